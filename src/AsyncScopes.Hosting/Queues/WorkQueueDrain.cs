using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AsyncScopes.Hosting;

/// <summary>
/// Drains a registered queue when the host has stopped its services (which may still enqueue as they stop) and
/// before the container is disposed: a handler that resolves services (or creates a scope) would fail on a container
/// being disposed, and an item it held would fail with it.
/// </summary>
internal sealed partial class WorkQueueDrain<T>(CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>> queue, string name, ILogger logger)
    : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Completes the queue: its items have until the queue's drain timeout or the host's shutdown timeout,
    /// whichever ends first; then the running handlers are cancelled, and what was not done is logged.</summary>
    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (queue.Value is not ({ } created, { } options))
        {
            return;
        }

        using var deadline = new CancellationTokenSource(options.DrainTimeout, options.TimeProvider);
        using CancellationTokenRegistration hostDeadline = cancellationToken.UnsafeRegister(
            static state => ((CancellationTokenSource)state!).Cancel(), deadline);
        WorkQueueResult<T> result = await created.CompleteAsync(deadline.Token).ConfigureAwait(false);
        if (result.Unprocessed.Count > 0)
        {
            LogUnprocessed(logger, name, result.Unprocessed.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Work queue {Queue} stopped with {Count} items not processed: its drain time or the host's shutdown timeout ran out.")]
    private static partial void LogUnprocessed(ILogger logger, string queue, int count);
}
