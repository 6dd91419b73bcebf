using System.Diagnostics;
namespace AsyncScopes;

/// <summary>
/// What became of every item a <see cref="WorkQueue{T}"/> accepted: each one is counted exactly once, as completed,
/// failed or unprocessed (<see cref="Completed"/> + <see cref="FailedCount"/> + the count of
/// <see cref="Unprocessed"/> is the number of items accepted).
/// </summary>
/// <typeparam name="T">The work item type.</typeparam>
[DebuggerDisplay("Completed = {Completed}, Failed = {FailedCount}, Unprocessed = {Unprocessed.Count}")]
public sealed class WorkQueueResult<T>
{
    internal WorkQueueResult(long completed, long failedCount, IReadOnlyList<(T Item, Exception Error)> failed, IReadOnlyList<T> unprocessed)
    {
        Completed = completed;
        FailedCount = failedCount;
        Failed = failed;
        Unprocessed = unprocessed;
    }

    /// <summary>The number of items whose handler completed.</summary>
    public long Completed { get; }

    /// <summary>The number of items whose handler failed: all of them, however many <see cref="Failed"/> kept.</summary>
    public long FailedCount { get; }

    /// <summary>The last items whose handler failed, with the failure, in the order they failed: at most
    /// <see cref="WorkQueueOptions{T}.MaxRetainedFailures"/> of them. When more failed (<see cref="FailedCount"/> is
    /// larger than this list), the earlier ones were dropped; <see cref="WorkQueueOptions{T}.OnError"/> saw every
    /// one.</summary>
    public IReadOnlyList<(T Item, Exception Error)> Failed { get; }

    /// <summary>Items accepted and never finished: not started, or cancelled while running (by the token of
    /// <see cref="WorkQueue{T}.CompleteAsync"/>, the queue's own token, or the drain deadline of
    /// <see cref="WorkQueue{T}.DisposeAsync"/>).</summary>
    public IReadOnlyList<T> Unprocessed { get; }
}
