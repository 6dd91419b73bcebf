using System.Threading.Tasks.Sources;

namespace AsyncScopes;

/// <summary>
/// A renter waiting for an item; its outcome is the item, or null for a place to create one. Reused across waits,
/// as <c>System.Threading.Channels</c> reuses its operations: each wait is one version of the source, and a
/// <see cref="ValueTask{TResult}"/> of an earlier version fails rather than read a later renter's outcome.
/// </summary>
/// <remarks>Two ways to wait. <c>RentSlowAsync</c> awaits the item or place (<see cref="WaitAsync"/>) and goes on
/// from there. A direct waiter (<see cref="WaitForLeaseAsync"/>) is awaited by the renter itself for its lease: it
/// is only handed items, a place being turned into an item first (<see cref="IThreadPoolWorkItem.Execute"/>).</remarks>
/// <typeparam name="T">The pooled item type.</typeparam>
internal sealed class PoolWaiter<T>(AsyncPool<T> pool) : IValueTaskSource<PoolSlot<T>?>, IValueTaskSource<PoolLease<T>>, IThreadPoolWorkItem
    where T : class
{
    // Continuations never run inline: the waiter is completed under the pool's lock.
    private ManualResetValueTaskSourceCore<PoolSlot<T>?> _core = new() { RunContinuationsAsynchronously = true };

    public AsyncPool<T> Pool { get; } = pool;

    // The queue's links and membership; guarded by the pool's lock.
    public PoolWaiter<T>? Previous { get; set; }

    public PoolWaiter<T>? Next { get; set; }

    public bool IsQueued { get; set; }

    // The link in the pool's spare waiters.
    public PoolWaiter<T>? NextSpare { get; set; }

    // A direct waiter's: set before it is queued, for a creation on its behalf.
    public bool IsDirect { get; set; }

    public CancellationToken CancellationToken { get; set; }

    public ExecutionContext? Context { get; set; }

    // A direct waiter's: set after it is queued, read only by its renter's GetResult.
    public long WaitStarted { get; set; }

    public string? RentStackTrace { get; set; }

    // Captured with RentStackTrace: the lease is made on the thread that hands the item over, not in the renter's flow.
    public OpenScopeInfo? RentParent { get; set; }

    // A direct waiter's lease, from the moment it is handed an item until its renter reads it.
    public PoolLease<T> HandedLease { get; private set; }

    public CancellationTokenRegistration Registration { get; set; }

    public ITimer? Timer { get; set; }

    // The span of this wait, while a tracer listens (see ScopeDiagnostics.ActivitySourceName).
    public System.Diagnostics.Activity? Span { get; set; }

    public ValueTask<PoolSlot<T>?> WaitAsync() => new(this, _core.Version);

    public ValueTask<PoolLease<T>> WaitForLeaseAsync() => new(this, _core.Version);

    public void SetResult(PoolSlot<T>? slot) => _core.SetResult(slot);

    // Hands an item over. A direct waiter's lease is made here, not when its renter reads it: a renter that went
    // away without reading its ValueTask leaves a lease that is found when collected, not an item counted in use
    // that nothing can reclaim.
    public void Hand(PoolSlot<T> slot)
    {
        if (IsDirect)
        {
            HandedLease = slot.Lease(Pool.Name, RentStackTrace, RentParent);
        }

        _core.SetResult(slot);
    }

    public void SetException(Exception error) => _core.SetException(error);

    public void Reset()
    {
        _core.Reset();
        IsDirect = false;
        CancellationToken = default;
        Context = null;
        WaitStarted = 0;
        RentStackTrace = null;
        RentParent = null;
        HandedLease = default;
        Registration = default;
        Span = null;
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    PoolSlot<T>? IValueTaskSource<PoolSlot<T>?>.GetResult(short token) => _core.GetResult(token);

    // The renter of a direct wait takes its lease; the waiter is then the pool's again.
    PoolLease<T> IValueTaskSource<PoolLease<T>>.GetResult(short token)
    {
        // A stale token, or a wait not yet completed (a blocking read), throws here and touches nothing.
        if (_core.GetStatus(token) == ValueTaskSourceStatus.Pending)
        {
            _ = _core.GetResult(token);
        }

        var pool = Pool;
        long waitStarted = WaitStarted;
        var lease = HandedLease;
        try
        {
            _ = _core.GetResult(token);
        }
        finally
        {
            EndWait();
        }

        pool.RecordWait(waitStarted);
        return lease;
    }

    /// <summary>The one cleanup of a wait, whichever way it waited, once its outcome was read: no cancellation or timer
    /// callback can reach the waiter after this, and the waiter goes back to the pool's spares.</summary>
    public void EndWait()
    {
        if (Span is { } span)
        {
            Span = null;
            ScopeTracing.StopPoolWaitSpan(span, _core.GetStatus(_core.Version));
        }

        // Dispose, not Unregister: it waits for a cancellation callback that is running, so that none can reach the
        // waiter once it serves another renter.
        Registration.Dispose();
        if (Timer is { } timer)
        {
            // A timer's callback may still be on its way: this waiter serves no other wait, so a late callback finds it
            // out of the queue and does nothing.
            timer.Dispose();
        }
        else
        {
            Pool.RecycleWaiter(this);
        }
    }

    // A place was handed to this direct waiter: create its item in its renter's context.
    void IThreadPoolWorkItem.Execute()
    {
        if (Context is { } context)
        {
            ExecutionContext.Run(context, static state => _ = ((PoolWaiter<T>)state!).Pool.CreateForWaiterAsync((PoolWaiter<T>)state!), this);
        }
        else
        {
            _ = Pool.CreateForWaiterAsync(this);
        }
    }
}
