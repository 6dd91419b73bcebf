namespace AsyncScopes;

/// <summary>
/// What became of every item a <see cref="WorkQueue{T}"/> accepted: each one is counted exactly once, as completed,
/// failed or unprocessed.
/// </summary>
/// <typeparam name="T">The work item type.</typeparam>
public sealed class WorkQueueResult<T>
{
    internal WorkQueueResult(long completed, IReadOnlyList<(T Item, Exception Error)> failed, IReadOnlyList<T> unprocessed)
    {
        Completed = completed;
        Failed = failed;
        Unprocessed = unprocessed;
    }

    /// <summary>The number of items whose handler completed.</summary>
    public long Completed { get; }

    /// <summary>The items whose handler failed, with the failure, in the order they failed.</summary>
    public IReadOnlyList<(T Item, Exception Error)> Failed { get; }

    /// <summary>Items accepted and never finished: not started, or cancelled while running (by the token of
    /// <see cref="WorkQueue{T}.CompleteAsync"/>, the queue's own token, or the drain deadline of
    /// <see cref="WorkQueue{T}.DisposeAsync"/>).</summary>
    public IReadOnlyList<T> Unprocessed { get; }
}
