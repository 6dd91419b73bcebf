using System.Diagnostics;

namespace AsyncScopes;

/// <summary>
/// One item of a pool and its bookkeeping; reused across leases. The pool holds it strongly from creation to
/// destruction; a lease holds one of its two <see cref="PoolLeaseHandle{T}"/>s, whose collection tells the pool that
/// a lease was dropped without being returned.
/// </summary>
internal sealed class PoolSlot<T>
    where T : class
{
    // Even: not leased; odd: leased, and the value is the lease's identity.
    private long _version;
    private long _discardVersion = -1;
    private bool _leakReported;

    // The handles not leased out; the leased one is referenced only by its lease (and its copies).
    private PoolLeaseHandle<T>? _handle0;
    private PoolLeaseHandle<T>? _handle1;
    private int _leasedIndex; // the handle of the current (or last) lease
    private bool _retired;

    public PoolSlot(AsyncPool<T> pool, T item, long createdAt)
    {
        Pool = pool;
        Item = item;
        CreatedAt = createdAt;
        _handle0 = new PoolLeaseHandle<T>(this, 0);
        _handle1 = new PoolLeaseHandle<T>(this, 1);
        _leasedIndex = 1;
    }

    public AsyncPool<T> Pool { get; }

    public T Item { get; }

    public long CreatedAt { get; }

    public long IdleSince { get; set; }

    /// <summary>Whether a renter handed this item validates it first (<see cref="AsyncPoolOptions{T}.Validate"/>): it
    /// was idle, rather than handed straight from a returning lease.</summary>
    public bool NeedsValidation { get; set; }

    public ScopeTracker? Tracker { get; private set; }

    /// <summary>The lease was reported as leaked when the pool drained (it was untracked): its collection later is
    /// counted, not reported again.</summary>
    public bool LeakReported
    {
        get => Volatile.Read(ref _leakReported);
        set => Volatile.Write(ref _leakReported, value);
    }

    public bool IsLeased => (Volatile.Read(ref _version) & 1) == 1;

    public bool IsLeasedAs(long version) => Volatile.Read(ref _version) == version;

    /// <summary>Starts a lease; the caller owns the slot exclusively.</summary>
    /// <param name="poolName">The pool's name, for leak tracking.</param>
    /// <param name="rentStackTrace">Where the rent was called, captured when it began, for a lease handed over
    /// asynchronously; null to capture the stack here, if leak tracking is on.</param>
    /// <param name="rentParent">The tracked scope the rent was called in, captured with <paramref name="rentStackTrace"/>.</param>
    public PoolLease<T> Lease(string? poolName, string? rentStackTrace = null, OpenScopeInfo? rentParent = null)
    {
        // The handle not used by the last lease: a copy of that lease may still be reachable.
        int index = _leasedIndex ^ 1;
        PoolLeaseHandle<T>? handle;
        if (index == 0)
        {
            handle = _handle0;
            _handle0 = null;
        }
        else
        {
            handle = _handle1;
            _handle1 = null;
        }

        Debug.Assert(handle is not null, "A slot that is not leased holds both its handles.");
        _leasedIndex = index;
        Tracker = rentStackTrace is null
            ? ScopeTracker.StartIfTracking("PoolLease", poolName)
            : ScopeTracker.Start("PoolLease", poolName, rentStackTrace, rentParent);
        long version = Interlocked.Increment(ref _version);
        Debug.Assert((version & 1) == 1, "A slot is leased only when it is not.");
        return new PoolLease<T>(handle, version);
    }

    /// <summary>Ends the lease if <paramref name="version"/> is the current one; false for a stale or repeated return.</summary>
    public bool TryEndLease(PoolLeaseHandle<T> handle, long version, out bool discard)
    {
        discard = Volatile.Read(ref _discardVersion) == version;
        if (Interlocked.CompareExchange(ref _version, version + 1, version) != version)
        {
            return false;
        }

        TakeBack(handle);
        Tracker?.Close();
        Tracker = null;
        return true;
    }

    public void RequestDiscard(long version)
    {
        if (IsLeasedAs(version))
        {
            Volatile.Write(ref _discardVersion, version);
        }
    }

    /// <summary>The slot is destroyed or its leak handled: its handles' finalizers have nothing left to do.</summary>
    public void Retire()
    {
        Volatile.Write(ref _retired, true);
        _handle0?.Retire();
        _handle1?.Retire();
    }

    // Finalizer thread: a handle nobody references any more. Only the handle of the current lease means a dropped
    // lease; the other one is collected with its slot, after the slot was reclaimed or while it was not leased.
    public void OnHandleCollected(PoolLeaseHandle<T> handle)
    {
        long version = Volatile.Read(ref _version);
        if ((version & 1) == 0 || handle.Index != _leasedIndex || Volatile.Read(ref _retired))
        {
            return;
        }

        // Ends the lease, so that nothing else (the pool's drain) treats it as out.
        if (Interlocked.CompareExchange(ref _version, version + 1, version) == version)
        {
            Pool.OnLeaseCollected(this);
        }
    }

    // A tracked lease reports itself through its tracker. An untracked one recorded nothing when rented, so its report
    // carries the time the leak was found.
    public OpenScopeInfo DescribeUntrackedLease() => ScopeTracker.Untracked("PoolLease", Pool.Name, DateTimeOffset.UtcNow);

    private void TakeBack(PoolLeaseHandle<T> handle)
    {
        if (handle.Index == 0)
        {
            _handle0 = handle;
        }
        else
        {
            _handle1 = handle;
        }
    }
}
