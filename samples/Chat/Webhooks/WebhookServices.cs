using AsyncScopes;
using Chat.Storage;
using Microsoft.Extensions.Options;

namespace Chat.Webhooks;

/// <summary>The webhook dispatcher, a hosted scope, and the deliveries' queue it feeds, with its health check.</summary>
internal static class WebhookServices
{
    /// <summary>The key of the deliveries' queue.</summary>
    public const string Queue = "webhooks";

    /// <summary>Registers the dispatcher (<see cref="WebhookDispatcher"/>, a hosted service) and the queue whose
    /// workers deliver the outbox's jobs (<c>Webhooks:Workers</c> at once, as many waiting at most, on the service's
    /// clock) with its check, <c>queue:webhooks</c>: degraded while it is full. The dispatcher feeds the queue and
    /// completes it when it stops. Called after the chat service is registered (see <see cref="ChatApp"/>).</summary>
    /// <remarks>The dispatcher hands the queue no more jobs than its idle workers can start, so the queue fills only
    /// when the workers are slower to pick jobs up than the feeder to claim them; the backlog that matters, the jobs
    /// pending in the outbox, is in <c>/health/details</c>.</remarks>
    public static IServiceCollection AddChatWebhooks(this IServiceCollection services)
    {
        services.AddSingleton<WebhookDestinations>();
        services.AddWorkQueue<OutboxJob>(Queue, (provider, job, ct) => provider.GetRequiredService<WebhookDispatcher>().DeliverAsync(job, ct))
            .Configure<IOptions<WebhookOptions>, TimeProvider>((queue, webhooks, time) =>
            {
                queue.Workers = webhooks.Value.Workers;
                queue.Capacity = webhooks.Value.Workers;
                queue.TimeProvider = time;
            });
        services.AddHealthChecks().AddWorkQueueCheck<OutboxJob>(Queue);
        services.AddSingleton<WebhookDispatcher>();
        services.AddHostedService(provider => provider.GetRequiredService<WebhookDispatcher>());
        return services;
    }
}
