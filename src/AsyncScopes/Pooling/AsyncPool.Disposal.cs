using System.Diagnostics;

namespace AsyncScopes;

// Disposal: the drain bounded by DrainTimeout, and leases found dropped by the collector.
public sealed partial class AsyncPool<T>
{
    /// <summary>
    /// Disposes the pool: new rents and current waiters get <see cref="ObjectDisposedException"/>, every idle item's
    /// destruction starts at once (concurrently, not one after another), leased items are destroyed when returned.
    /// The whole disposal is bounded by <see cref="AsyncPoolOptions{T}.DrainTimeout"/> on the pool's
    /// <see cref="AsyncPoolOptions{T}.TimeProvider"/>: it waits that long for the leased items to come back and for
    /// every destruction to end; then it reports each lease still out through
    /// <see cref="ScopeDiagnostics.LeakDetected"/>, and the destructions still running (a close that hangs) as one
    /// <see cref="TimeoutException"/> naming them through <see cref="ScopeDiagnostics.UnobservedFailure"/>, and
    /// returns; those destructions go on in the background. Calling it again waits for the first call.
    /// </summary>
    /// <remarks>A destruction runs on the disposing thread until its first <see langword="await"/>: a
    /// <see cref="AsyncPoolOptions{T}.Destroy"/> (or a synchronous <see cref="IDisposable.Dispose"/>) that blocks its
    /// thread delays this call by as long; one that is asynchronous never delays it past the drain timeout.</remarks>
    /// <returns>A task that completes when the pool is drained or the drain timeout elapsed; it never faults.</returns>
    public ValueTask DisposeAsync()
    {
        List<PoolSlot<T>> idle;
        List<PoolWaiter<T>> waiters;
        TaskCompletionSource disposal;
        lock (_lock)
        {
            AssertInvariantsLocked();
            if (_disposal is not null)
            {
                return new ValueTask(_disposal.Task);
            }

            disposal = _disposal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            idle = [.. _idle];
            _idle.Clear();
            if (Interlocked.Exchange(ref _cached, null) is { } cached)
            {
                idle.Add(cached);
            }

            waiters = [];
            while (_waiters.Dequeue() is { } waiter)
            {
                waiters.Add(waiter);
            }
        }

        // Each waiter taken out of the queue is this call's to complete; its renter recycles it once woken.
        var disposed = new ObjectDisposedException(GetType().Name, $"The pool{NameSuffix} was disposed.");
        foreach (var waiter in waiters)
        {
            waiter.SetException(disposed);
        }

        _sweepTimer?.Dispose();
        _minIdleRetryTimer?.Dispose();
        _ = DisposeCoreAsync(idle, disposal);
        return new ValueTask(disposal.Task);
    }

    private async Task DisposeCoreAsync(List<PoolSlot<T>> idle, TaskCompletionSource disposal)
    {
        // Every destruction at once: one that never completes (a close on a dead network) delays no other, and the
        // drain deadline bounds them all. Each runs here until its first await, so that a synchronous one is done
        // before the deadline is even looked at.
        foreach (var slot in idle)
        {
            _ = DestroyAsync(slot);
        }

        lock (_lock)
        {
            AssertInvariantsLocked();
            CheckDrainedLocked();
        }

        await _drained!.Task.WaitAsync(_options.DrainTimeout, _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_drained.Task.IsCompleted)
        {
            List<PoolSlot<T>> outstanding = [];
            List<PoolSlot<T>> destroying;
            lock (_lock)
            {
                AssertInvariantsLocked();
                foreach (var slot in _all)
                {
                    if (slot.IsLeased)
                    {
                        outstanding.Add(slot);
                    }
                }

                destroying = [.. _destroying];
            }

            if (destroying.Count > 0)
            {
                ReportFailure(new TimeoutException(
                    $"Destroying {destroying.Count} item(s) of pool{NameSuffix} did not finish within the drain timeout of {_options.DrainTimeout}: {string.Join(", ", destroying.Select(slot => slot.Item))}."));
            }

            foreach (var slot in outstanding)
            {
                if (slot.Tracker is { } tracker)
                {
                    tracker.ReportLeakAndClose();
                }
                else
                {
                    slot.LeakReported = true;
                    ScopeDiagnostics.ReportLeak(slot.DescribeUntrackedLease());
                }
            }
        }

        ScopeMetrics.Unregister(_metrics);
        disposal.TrySetResult();
    }

    // Drained once every place in the pool is given up: no item leased, idle, being created, or still being destroyed
    // (a destroyed item counts as destroyed from the start of its destruction, but keeps its place until it ends).
    private void CheckDrainedLocked()
    {
        if (_drained is not null && _capacityUsed == 0)
        {
            _drained.TrySetResult();
        }
    }

    internal void OnLeaseCollected(PoolSlot<T> slot)
    {
        // Finalizer thread: the lease was dropped. Its item is not destroyed here (whoever dropped the lease may still
        // hold the item); the slot's capacity is reclaimed and the leak reported (a tracked lease through its
        // tracker, and a lease already reported when the pool drained not twice).
        lock (_lock)
        {
            AssertInvariantsLocked();
            _destroyed++;
            _all.Remove(slot);
        }

        slot.Retire();

        // The freed place may go to a waiter, who creates its item on its own thread. A replacement for MinIdle is
        // created on the thread pool: the factory is the user's code, and the finalizer thread must not run it.
        ReleaseCapacity(refillMinIdle: false);
        if (_options.MinIdle > 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static pool => pool.EnsureMinIdle(), this, preferLocal: false);
        }

        if (slot.Tracker is { } tracker)
        {
            tracker.ReportLeakAndClose();
        }
        else if (!slot.LeakReported)
        {
            ScopeDiagnostics.ReportLeak(slot.DescribeUntrackedLease());
        }
    }
}
