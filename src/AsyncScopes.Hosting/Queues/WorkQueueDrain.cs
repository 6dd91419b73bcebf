using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AsyncScopes.Hosting;

/// <summary>A registered queue, as the drain sees it.</summary>
internal interface IDrainableQueue
{
    string Name { get; }

    /// <summary>Completes the queue if it was created: until its drain timeout or <paramref name="hostDeadline"/>,
    /// then its handlers are cancelled. Reports to <paramref name="log"/> what was not done.</summary>
    Task DrainAsync(WorkQueueDrain.Log log, CancellationToken hostDeadline);
}

/// <summary>
/// Drains the registered queues when the host has stopped its services (which may still enqueue as they stop) and
/// before the container is disposed: a handler that resolves services (or creates a scope) would fail on a container
/// being disposed, and the item it held with it. One after the other, in registration order, once.
/// </summary>
internal sealed partial class WorkQueueDrain(IEnumerable<IDrainableQueue> queues, ILogger<WorkQueueDrain> logger) : IHostedLifecycleService
{
    private int _drained;

    /// <summary>What the drain of one queue tells the host's log.</summary>
    internal sealed class Log(ILogger logger)
    {
        public void Unprocessed(string queue, int count) => LogUnprocessed(logger, queue, count);

        public void StillRunning(string queue, int count, TimeSpan grace) => LogStillRunning(logger, queue, count, grace);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _drained, 1) != 0)
        {
            return; // a second stop: the queues are completed already
        }

        var log = new Log(logger);
        foreach (IDrainableQueue queue in queues)
        {
            await queue.DrainAsync(log, cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Work queue {Queue} stopped with {Count} items not processed: its drain time or the host's shutdown timeout ran out.")]
    private static partial void LogUnprocessed(ILogger logger, string queue, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Work queue {Queue} still runs {Count} handlers {Grace} after they were cancelled at the end of its drain time or the host's shutdown timeout; the stop waits for them.")]
    private static partial void LogStillRunning(ILogger logger, string queue, int count, TimeSpan grace);
}

/// <summary>The drain of one queue of <typeparamref name="T"/>.</summary>
internal sealed class DrainableQueue<T>(string name, CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>> queue) : IDrainableQueue
{
    /// <summary>How long the handlers have to end once cancelled before one still running is reported, as a task
    /// scope's default straggler timeout.</summary>
    public static readonly TimeSpan StragglerGrace = TimeSpan.FromSeconds(5);

    public string Name => name;

    public async Task DrainAsync(WorkQueueDrain.Log log, CancellationToken hostDeadline)
    {
        if (queue.Value is not ({ } created, { } options))
        {
            return; // never created
        }

        if (created.IsCompleting)
        {
            // Completed by its owner, who has its result and reports it: only waited for, so that it has ended before
            // the container is disposed.
            await created.CompleteAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        using var deadline = new CancellationTokenSource(options.DrainTimeout, options.TimeProvider);
        using CancellationTokenRegistration host = hostDeadline.UnsafeRegister(
            static state => ((CancellationTokenSource)state!).Cancel(), deadline);
        Task<WorkQueueResult<T>> completion = created.CompleteAsync(deadline.Token);

        // A handler still running StragglerGrace after the cancellation ignores its token: named in the log, awaited.
        ITimer? stragglers = null;
        using (deadline.Token.UnsafeRegister(
            _ => stragglers = Cancellation.StartTimer(
                options.TimeProvider,
                _ =>
                {
                    if (!completion.IsCompleted && created.Statistics.Running is > 0 and int running)
                    {
                        log.StillRunning(Name, running, StragglerGrace);
                    }
                },
                this,
                StragglerGrace),
            null))
        {
            WorkQueueResult<T> result = await completion.ConfigureAwait(false);
            if (result.Unprocessed.Count > 0)
            {
                log.Unprocessed(Name, result.Unprocessed.Count);
            }
        }

        stragglers?.Dispose();
    }
}
