namespace AsyncScopes;

/// <summary>
/// The last failures of a work queue, at most <see cref="WorkQueueOptions{T}.MaxRetainedFailures"/> of them, in the
/// order they were added: beyond that, each new one drops the oldest. Written by every worker, under its own lock: a
/// failure is rare next to the handler's work, and the lock keeps the bound exact.
/// </summary>
/// <typeparam name="T">The work item type.</typeparam>
internal sealed class RetainedFailures<T>(int capacity)
{
    private readonly Lock _lock = new();
    private readonly Queue<(T Item, Exception Error)> _failures = new();

    public void Add(T item, Exception error)
    {
        if (capacity == 0)
        {
            return;
        }

        lock (_lock)
        {
            if (_failures.Count == capacity)
            {
                _failures.Dequeue();
            }

            _failures.Enqueue((item, error));
        }
    }

    public (T Item, Exception Error)[] ToArray()
    {
        lock (_lock)
        {
            return _failures.ToArray();
        }
    }
}
