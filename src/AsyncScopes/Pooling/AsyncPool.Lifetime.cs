using System.Diagnostics;

namespace AsyncScopes;

// Lifetime: destruction, MaxLifetime and IdleTimeout sweeping, and the MinIdle top-up.
public sealed partial class AsyncPool<T>
{
    private async Task DestroyAsync(PoolSlot<T> slot)
    {
        lock (_lock)
        {
            AssertInvariantsLocked();
            _destroyed++;
            _all.Remove(slot);
            _destroying.Add(slot);
        }

        slot.Retire();
        try
        {
            if (_options.Destroy is { } destroy)
            {
                await destroy(slot.Item).ConfigureAwait(false);
            }
            else if (slot.Item is IAsyncDisposable asyncDisposable)
            {
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
            }
            else if (slot.Item is IDisposable disposable)
            {
                disposable.Dispose();
            }
        }
#pragma warning disable CA1031 // Destruction failures are reported, never thrown at a renter returning a lease.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportFailure(e);
        }

        lock (_lock)
        {
            AssertInvariantsLocked();
            _destroying.Remove(slot);
        }

        ReleaseCapacity();
    }

    private bool IsExpired(PoolSlot<T> slot) =>
        _maxLifetime is { } lifetime && _time.GetElapsedTime(slot.CreatedAt) > lifetime;

    private void ScheduleSweepLocked(PoolSlot<T> slot)
    {
        Debug.Assert(_sweepTimer is not null, "Only pools with an idle or lifetime limit sweep.");
        long due = NextExpiry(slot);
        if (due < _sweepDue)
        {
            _sweepDue = due;
            _sweepTimer!.Change(DueIn(due), Timeout.InfiniteTimeSpan);
        }
    }

    private long NextExpiry(PoolSlot<T> slot)
    {
        long due = long.MaxValue;
        long frequency = _time.TimestampFrequency;
        if (_idleTimeout is { } idle)
        {
            due = Math.Min(due, slot.IdleSince + (long)(idle.TotalSeconds * frequency));
        }

        if (_maxLifetime is { } lifetime)
        {
            due = Math.Min(due, slot.CreatedAt + (long)(lifetime.TotalSeconds * frequency));
        }

        return due;
    }

    private TimeSpan DueIn(long timestamp)
    {
        // One tick past the expiry, so that the item is strictly older than its limit when the sweep runs.
        // Never zero: a timer due now may fire synchronously inside Change, which runs under the pool's lock.
        long remaining = Math.Max(1, timestamp - _time.GetTimestamp() + 1);
        return TimeSpan.FromTicks(Math.Max(1, (long)((double)remaining / _time.TimestampFrequency * TimeSpan.TicksPerSecond)));
    }

    // Destroys idle items that expired or idled too long (keeping MinIdle), then schedules the next sweep.
    private void Sweep()
    {
        var doomed = new List<PoolSlot<T>>();
        lock (_lock)
        {
            AssertInvariantsLocked();
            if (_disposal is not null)
            {
                return;
            }

            _sweepDue = long.MaxValue;
            long now = _time.GetTimestamp();
            long idleLimit = _idleTimeout is { } idle ? (long)(idle.TotalSeconds * _time.TimestampFrequency) : long.MaxValue;

            // Oldest idle first: the list is in order of return.
            for (int i = 0; i < _idle.Count; i++)
            {
                var slot = _idle[i];
                bool expired = IsExpired(slot);
                bool idledOut = now - slot.IdleSince > idleLimit && _idle.Count - 1 >= _options.MinIdle;
                if (expired || idledOut)
                {
                    _idle.RemoveAt(i--);
                    doomed.Add(slot);
                }
            }

            foreach (var slot in _idle)
            {
                // An item kept only for MinIdle has an idle expiry in the past: it waits for its lifetime, or a later
                // sweep (the next return schedules one), instead of making this one spin. An expiry now is not past:
                // the item is exactly at its limit, and expires a tick later.
                long due = NextExpiry(slot);
                if (due < now && _maxLifetime is { } lifetime)
                {
                    due = slot.CreatedAt + (long)(lifetime.TotalSeconds * _time.TimestampFrequency);
                }

                if (due >= now && due < _sweepDue)
                {
                    _sweepDue = due;
                }
            }

            if (_sweepDue != long.MaxValue)
            {
                _sweepTimer!.Change(DueIn(_sweepDue), Timeout.InfiniteTimeSpan);
            }
        }

        foreach (var slot in doomed)
        {
            _ = DestroyAsync(slot);
        }
    }

    private void EnsureMinIdle()
    {
        if (_options.MinIdle == 0)
        {
            return;
        }

        int toCreate;
        lock (_lock)
        {
            AssertInvariantsLocked();
            if (_disposal is not null || _minIdleRetryTimer is not null)
            {
                return;
            }

            toCreate = Math.Min(_options.MinIdle - IdleCountLocked - _minIdleCreating, _options.MaxSize - _capacityUsed);
            for (int i = 0; i < toCreate; i++)
            {
                ReserveLocked();
                _minIdleCreating++;
            }
        }

        for (int i = 0; i < toCreate; i++)
        {
            _ = CreateIdleAsync();
        }
    }

    private async Task CreateIdleAsync()
    {
        PoolSlot<T> slot;
        try
        {
            slot = await CreateAsync(forMinIdle: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            return;
        }
#pragma warning disable CA1031 // Background creation is retried with backoff; its failures are reported, not thrown.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportFailure(e);
            ScheduleMinIdleRetry();
            return;
        }

        lock (_lock)
        {
            AssertInvariantsLocked();
            _minIdleRetryDelay = TimeSpan.FromSeconds(1);
        }

        ReturnToPool(slot); // sets whether a renter validates it: not if handed straight to one, as any new item
    }

    private void ScheduleMinIdleRetry()
    {
        lock (_lock)
        {
            AssertInvariantsLocked();
            if (_disposal is not null || _minIdleRetryTimer is not null)
            {
                return;
            }

            TimeSpan delay = _minIdleRetryDelay;
            _minIdleRetryDelay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MinIdleRetryMax.Ticks));
            _minIdleRetryTimer = _time.CreateTimer(
                static state =>
                {
                    var pool = (AsyncPool<T>)state!;
                    lock (pool._lock)
                    {
                        pool._minIdleRetryTimer?.Dispose();
                        pool._minIdleRetryTimer = null;
                    }

                    pool.EnsureMinIdle();
                },
                this,
                delay,
                Timeout.InfiniteTimeSpan);
        }
    }
}
