namespace AsyncScopes;

/// <summary>
/// One item of a pool and its bookkeeping; reused across leases. While leased, the pool holds it only weakly, so
/// that a lease nobody returns lets the slot be collected and its finalizer reclaim the capacity.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA1816:Dispose methods should call SuppressFinalize", Justification = "Retiring a slot is what ends its need for finalization.")]
internal sealed class PoolSlot<T>
    where T : class
{
    // Even: not leased; odd: leased, and the value is the lease's identity.
    private long _version;
    private long _discardVersion = -1;
    private bool _leakReported;

    public PoolSlot(AsyncPool<T> pool, T item, long createdAt)
    {
        Pool = pool;
        Item = item;
        CreatedAt = createdAt;
        Weak = new WeakReference<PoolSlot<T>>(this);
    }

    ~PoolSlot()
    {
        if ((Volatile.Read(ref _version) & 1) == 1)
        {
            Pool.OnLeaseCollected(this);
        }
    }

    public AsyncPool<T> Pool { get; }

    public T Item { get; }

    public long CreatedAt { get; }

    public long IdleSince { get; set; }

    /// <summary>Whether the slot came from the idle list (and so is validated before a rent) rather than straight
    /// from a returning lease.</summary>
    public bool IsFreshFromIdle { get; set; }

    public ScopeTracker? Tracker { get; private set; }

    /// <summary>The lease was reported as leaked when the pool drained (it was untracked): its collection later is
    /// counted, not reported again.</summary>
    public bool LeakReported
    {
        get => Volatile.Read(ref _leakReported);
        set => Volatile.Write(ref _leakReported, value);
    }

    public WeakReference<PoolSlot<T>> Weak { get; }

    public bool IsLeased => (Volatile.Read(ref _version) & 1) == 1;

    public bool IsLeasedAs(long version) => Volatile.Read(ref _version) == version;

    /// <summary>Starts a lease; the caller owns the slot exclusively.</summary>
    /// <param name="poolName">The pool's name, for leak tracking.</param>
    /// <param name="rentStackTrace">Where the rent was called, captured when it began, for a lease handed over
    /// asynchronously; null to capture the stack here, if leak tracking is on.</param>
    public PoolLease<T> Lease(string? poolName, string? rentStackTrace = null)
    {
        long version = Interlocked.Increment(ref _version);
        System.Diagnostics.Debug.Assert((version & 1) == 1, "A slot is leased only when it is not.");
        Tracker = rentStackTrace is null
            ? ScopeTracker.StartIfTracking("PoolLease", poolName)
            : ScopeTracker.Start("PoolLease", poolName, rentStackTrace);
        return new PoolLease<T>(this, version);
    }

    /// <summary>Ends the lease if <paramref name="version"/> is the current one; false for a stale or repeated return.</summary>
    public bool TryEndLease(long version, out bool discard)
    {
        discard = Volatile.Read(ref _discardVersion) == version;
        if (Interlocked.CompareExchange(ref _version, version + 1, version) != version)
        {
            return false;
        }

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

    /// <summary>The slot is destroyed or its leak handled: its finalizer has nothing left to do.</summary>
    public void Retire() => GC.SuppressFinalize(this);

    // Untracked leases record nothing when rented, so their report carries the time the leak was found.
    public OpenScopeInfo DescribeLease() =>
        Tracker?.Info ?? ScopeTracker.Untracked("PoolLease", Pool.Name, DateTimeOffset.UtcNow);
}
