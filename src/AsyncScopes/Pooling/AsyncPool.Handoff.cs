using System.Diagnostics;

namespace AsyncScopes;

// Who gets the next item: a returned item or a freed place goes to the first waiter, else to the idle items; a waiter
// that gives up leaves the queue and takes nothing.
public sealed partial class AsyncPool<T>
{
    // No idle item: reserves a place to create one (null) if the pool has room and nobody waits for it, else queues a
    // waiter and returns it. direct: the renter awaits the waiter itself (see WaitDirectly).
    private PoolWaiter<T>? ReserveOrQueueLocked(bool direct, string? rentStackTrace, CancellationToken cancellationToken)
    {
        if (_waiters.Count == 0 && _capacityUsed < _options.MaxSize)
        {
            ReserveLocked();
            return null;
        }

        var waiter = _waiters.Rent();
        if (direct)
        {
            // Set before it is queued: a place handed to it starts a creation that reads them.
            waiter.IsDirect = true;
            waiter.CancellationToken = cancellationToken;
            waiter.Context = ExecutionContext.Capture();
            waiter.RentStackTrace = rentStackTrace;
            waiter.RentParent = rentStackTrace is null ? null : ScopeTracker.Current; // in the renter's flow here
        }

        _waiters.Enqueue(waiter);
        return waiter;
    }

    // A waiter gives up (cancelled or timed out). Only a queued waiter can: one out of the queue was handed an item or
    // a place, or failed by disposal, and keeps that outcome. So a waiter never takes an item it gave up on.
    internal void AbandonWait(PoolWaiter<T> waiter, CancellationToken? canceled)
    {
        lock (_lock)
        {
            AssertInvariantsLocked();
            if (!waiter.IsQueued)
            {
                return;
            }

            Exception reason = canceled is { } token
                ? new OperationCanceledException(token)
                : new TimeoutException(
                    $"Timed out after {_acquireTimeout} waiting for an item of pool{NameSuffix} (MaxSize {_options.MaxSize}: {InUseLocked} in use, {_waiters.Count} waiting).");
            _waiters.Remove(waiter);
            waiter.SetException(reason);
        }
    }

    // An item leaves use: to the first live waiter, else to the idle list. unvalidated: an idle item whose validation
    // did not finish; a waiter it is handed to validates it, as it would have found it idle.
    private void ReturnToPool(PoolSlot<T> slot, bool unvalidated = false)
    {
        if (UsesCache && _waiters.Count == 0)
        {
            slot.NeedsValidation = true;
            if (Interlocked.CompareExchange(ref _cached, slot, null) is null)
            {
                // Checked again after publishing: a renter that registered as a waiter (or a disposal) meanwhile reads
                // the cache after registering, so one of the two sees the other. Take back whatever is there.
                if (_waiters.Count == 0 && _disposal is null)
                {
                    return;
                }

                var taken = Interlocked.Exchange(ref _cached, null);
                if (taken is null)
                {
                    return; // a renter took it
                }

                // Another return's item, idle here a moment: its origin is unknown, so a waiter checks it.
                unvalidated |= !ReferenceEquals(taken, slot);
                slot = taken;
            }
        }

        bool destroy = false;
        lock (_lock)
        {
            AssertInvariantsLocked();
            if (_disposal is not null)
            {
                destroy = true;
            }
            else
            {
                if (_waiters.Dequeue() is { } waiter)
                {
                    slot.NeedsValidation = unvalidated;
                    waiter.Hand(slot);
                    return; // stays in use, now by the waiter
                }

                slot.NeedsValidation = true;
                _idle.Add(slot);
                if (_sweepTimer is not null)
                {
                    slot.IdleSince = _time.GetTimestamp();
                    ScheduleSweepLocked(slot);
                }
            }
        }

        if (destroy)
        {
            _ = DestroyAsync(slot);
        }
    }

    // Takes an idle item, most recently used first; it counts as in use from here. None while renters wait: an item
    // is idle then only for the moment between its return and its hand-over to the first of them.
    private PoolSlot<T>? PopIdleLocked()
    {
        if (_waiters.Count > 0)
        {
            return null;
        }

        if (Volatile.Read(ref _cached) is not null && Interlocked.Exchange(ref _cached, null) is { } cached)
        {
            return cached;
        }

        int last = _idle.Count - 1;
        if (last < 0)
        {
            return null;
        }

        var slot = _idle[last];
        _idle.RemoveAt(last);
        return slot;
    }

    private void ReserveLocked()
    {
        _capacityUsed++;
        Debug.Assert(_capacityUsed <= _options.MaxSize, "Never more than MaxSize items.");
    }

    // A place in the pool was freed (an item destroyed or a creation failed): hand it to the first live waiter, who
    // will create an item, else give it up.
    private void ReleaseCapacity(bool refillMinIdle = true)
    {
        lock (_lock)
        {
            AssertInvariantsLocked();
            if (_waiters.Dequeue() is { } waiter)
            {
                if (waiter.IsDirect)
                {
                    // Its renter awaits a lease, not a place: the item is created for it.
                    ThreadPool.UnsafeQueueUserWorkItem(waiter, preferLocal: false);
                }
                else
                {
                    waiter.SetResult(null);
                }

                return;
            }

            _capacityUsed--;
            Debug.Assert(_capacityUsed >= 0, "Capacity released more often than reserved.");
            CheckDrainedLocked();
        }

        if (refillMinIdle)
        {
            EnsureMinIdle();
        }
    }

    // The renter is done with its waiter (see PoolWaiter.EndWait).
    internal void RecycleWaiter(PoolWaiter<T> waiter) => _waiters.Recycle(waiter);
}
