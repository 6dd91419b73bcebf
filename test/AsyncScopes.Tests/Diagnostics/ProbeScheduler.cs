namespace AsyncScopes.Tests.Diagnostics;

/// <summary>
/// A scheduler that runs a probe at the moment a task is queued to it. A continuation with this scheduler is queued
/// synchronously by the thread that completes its antecedent, so the probe sees the world as it is when the
/// antecedent completes; the continuation itself then runs on the thread pool.
/// </summary>
internal sealed class ProbeScheduler<T>(Func<T> probe) : TaskScheduler
{
    private readonly TaskCompletionSource<T> _observed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>What the probe returned the first time a task was queued.</summary>
    public Task<T> Observed => _observed.Task;

    protected override void QueueTask(Task task)
    {
        _observed.TrySetResult(probe());
        ThreadPool.UnsafeQueueUserWorkItem(_ => TryExecuteTask(task), null);
    }

    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

    protected override IEnumerable<Task> GetScheduledTasks() => [];
}
