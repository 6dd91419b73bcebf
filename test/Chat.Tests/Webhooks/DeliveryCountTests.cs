using Chat.Tests.Support;

namespace Chat.Tests.Webhooks;

/// <summary>
/// Deliveries counted under load: every job is sent once per attempt, never again once recorded, and never with an
/// attempt number the outbox has already passed.
/// </summary>
public sealed class DeliveryCountTests : ReceiverTest
{
    [Fact]
    public async Task Every_webhook_gets_every_message_exactly_once_round_after_round()
    {
        const int webhooks = 10;
        const int messages = 100;
        const int rounds = 3;
        ChatServer server = await StartServerAsync();
        await RegisterAsync(server, webhooks);

        // Each round posts while the deliveries of the one before may still run.
        for (int round = 1; round <= rounds; round++)
        {
            await PostAsync(server, messages);
            await server.WaitForOutboxAsync(counts => counts.Delivered >= (round - 1) * webhooks * messages);
        }

        await server.WaitForOutboxAsync(counts => counts.Delivered == rounds * webhooks * messages);
        await server.StopAsync(); // lets anything still queued finish: a duplicate would be sent by then

        WebhookOutcome[] outcomes = [.. Receiver.Outcomes];
        Assert.Equal(rounds * webhooks * messages, outcomes.Length);
        Assert.Equal(rounds * webhooks * messages, outcomes.Select(o => o.Request.Delivery).Distinct().Count());
        Assert.All(outcomes, o => Assert.Equal((1, (int?)200), (o.Request.Attempt, o.Status)));
    }

    [Fact]
    public async Task A_receiver_that_always_fails_gets_exactly_MaxAttempts_posts_per_delivery()
    {
        const int webhooks = 5;
        const int messages = 10;
        const int maxAttempts = 5;
        ChatServer server = await StartServerAsync(settings: [$"Webhooks:MaxAttempts={maxAttempts}", QuietRetries]);
        await RegisterAsync(server, webhooks);
        Receiver.Respond = (_, _) => Task.FromResult(500);

        await PostAsync(server, messages);
        await server.WaitForOutboxAsync(counts => counts.Failed == webhooks * messages);
        await server.StopAsync();

        // Each delivery: attempts 1 to MaxAttempts, each once, in order.
        WebhookOutcome[] outcomes = [.. Receiver.Outcomes];
        Assert.Equal(webhooks * messages * maxAttempts, outcomes.Length);
        Assert.All(
            outcomes.GroupBy(o => o.Request.Delivery),
            delivery => Assert.Equal(Enumerable.Range(1, maxAttempts), delivery.Select(o => o.Request.Attempt)));
    }

    // 200 warnings to the console would slow the run more than the deliveries do.
    private const string QuietRetries = "Logging:LogLevel:Chat.Webhooks.WebhookDispatcher=Error";

    private async Task RegisterAsync(ChatServer server, int webhooks)
    {
        for (int i = 0; i < webhooks; i++)
        {
            await server.RegisterWebhookAsync("lobby", new Uri(Receiver.Url, $"?hook={i}"));
        }
    }

    // Four posters at once, so that the feeder reads the outbox while workers record their attempts.
    private static Task PostAsync(ChatServer server, int messages) =>
        Parallel.ForEachAsync(
            Enumerable.Range(1, messages),
            new ParallelOptions { MaxDegreeOfParallelism = 4 },
            async (i, _) => await server.PostAsync("lobby", "ada", $"message {i}"));
}
