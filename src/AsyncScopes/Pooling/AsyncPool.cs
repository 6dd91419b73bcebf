using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace AsyncScopes;

/// <summary>
/// A pool of items whose leases are scopes: rent an item, use it, dispose the lease to give it back. Waiters are
/// served first-in first-out, a cancelled waiter never swallows an item, and never more than
/// <see cref="AsyncPoolOptions{T}.MaxSize"/> items exist.
/// </summary>
/// <typeparam name="T">The pooled item type: a connection, a socket, a buffer.</typeparam>
/// <remarks>
/// <para>Renting an idle item and returning it allocates nothing; when uncontended it takes no lock either (in a pool
/// without idle or lifetime limits, the last returned item waits in a lock-free slot). A renter that must wait reuses
/// one of the pool's waiters and, in a pool without <see cref="AsyncPoolOptions{T}.Validate"/> and
/// <see cref="AsyncPoolOptions{T}.MaxLifetime"/>, awaits that waiter for its lease, so that in a steady state waiting
/// allocates nothing either. With <c>Validate</c> or <c>MaxLifetime</c> set, a wait allocates its state machine; with
/// <see cref="AsyncPoolOptions{T}.AcquireTimeout"/> set, its timer and its waiter.</para>
/// <para>Items are destroyed, never thrown away: on discard, on failure of <c>UseAsync</c> (see
/// <see cref="AsyncPoolOptions{T}.DiscardOn"/>), when too old or idle too long, and at disposal. Reset, validation
/// and destruction failures never reach a renter as the outcome of a return; they are reported through
/// <see cref="ScopeDiagnostics.UnobservedFailure"/>.</para>
/// </remarks>
[DebuggerDisplay("Size = {Statistics.Size}, Idle = {Statistics.Idle}, InUse = {Statistics.InUse}, Waiters = {Statistics.Waiters}")]
public sealed partial class AsyncPool<T> : IAsyncDisposable
    where T : class
{
    private static readonly TimeSpan MinIdleRetryMax = TimeSpan.FromSeconds(30);

    private readonly Func<CancellationToken, ValueTask<T>> _factory;
    private readonly AsyncPoolOptions<T> _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly List<PoolSlot<T>> _idle = [];
    private readonly HashSet<PoolSlot<T>> _all = []; // every item that exists, idle or leased
    private readonly HashSet<PoolSlot<T>> _destroying = []; // items whose destruction has started and not ended
    private readonly ITimer? _sweepTimer;
    private readonly MetricsSource _metrics;
    private readonly KeyValuePair<string, object?> _poolTag;
    private readonly TimeSpan? _acquireTimeout;
    private readonly TimeSpan? _idleTimeout;
    private readonly TimeSpan? _maxLifetime;

    // Whether a renter that must wait awaits its waiter itself (see WaitDirectly): when a handed item needs no
    // validation and cannot have expired, the lease is made from it without another async step.
    private readonly bool _waitsDirectly;

    private int _capacityUsed; // places taken: items that exist, or are being created or destroyed
    private PoolSlot<T>? _cached; // one idle item kept outside the lock: an uncontended rent and return take no lock

    // The renters waiting, first-in first-out, and the waiters kept for the next waits; guarded by _lock, but for
    // the count, which is read without it.
    private readonly PoolWaiterQueue<T> _waiters;

    private int _minIdleCreating;
    private long _created;
    private long _destroyed;
    private long _sweepDue = long.MaxValue;
    private ITimer? _minIdleRetryTimer;
    private TimeSpan _minIdleRetryDelay = TimeSpan.FromSeconds(1);
    private TaskCompletionSource? _disposal;
    private TaskCompletionSource? _drained;

    /// <summary>Creates a pool.</summary>
    /// <param name="factory">Creates an item; it receives the renter's token. A failure reaches the renter that
    /// caused the creation and frees its place in the pool.</param>
    /// <param name="options">The options, copied: changing them afterwards changes nothing here; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="factory"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException"><see cref="AsyncPoolOptions{T}.TimeProvider"/> is null.</exception>
    public AsyncPool(Func<CancellationToken, ValueTask<T>> factory, AsyncPoolOptions<T>? options = null)
    {
        ArgumentNullException.ThrowIfNull(factory);
        options = options?.Copy() ?? new AsyncPoolOptions<T>();
        options.ThrowIfInvalid();
        _factory = factory;
        _options = options;
        _time = options.TimeProvider;
        _acquireTimeout = Finite(options.AcquireTimeout);
        _idleTimeout = Finite(options.IdleTimeout);
        _maxLifetime = Finite(options.MaxLifetime);
        _waitsDirectly = options.Validate is null && _maxLifetime is null;
        _waiters = new PoolWaiterQueue<T>(this, options.MaxSize);
        _poolTag = new KeyValuePair<string, object?>(ScopeMetrics.PoolTag, options.Name ?? string.Empty);
        if (_idleTimeout is not null || _maxLifetime is not null)
        {
            _sweepTimer = _time.CreateTimer(static state => ((AsyncPool<T>)state!).Sweep(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        _metrics = new MetricsSource(this);
        ScopeMetrics.Register(_metrics);
        EnsureMinIdle();
    }

    /// <summary>The pool's name (<see cref="AsyncPoolOptions{T}.Name"/>).</summary>
    internal string? Name => _options.Name;

    /// <summary>The copy of the options this pool was created with.</summary>
    internal AsyncPoolOptions<T> Options => _options;

    /// <summary>A consistent snapshot of the pool's counts.</summary>
    public PoolStatistics Statistics
    {
        get
        {
            lock (_lock)
            {
                AssertInvariantsLocked();
                int idle = IdleCountLocked;
                return new PoolStatistics(idle + InUseLocked, idle, InUseLocked, _waiters.Count, _created, _destroyed);
            }
        }
    }

    // Items that exist and are not idle: leased, or between a lease and the pool. Derived, so that the cached item
    // can come and go without the lock.
    private int InUseLocked => (int)(_created - _destroyed) - IdleCountLocked;

    private int IdleCountLocked => _idle.Count + (Volatile.Read(ref _cached) is null ? 0 : 1);

    // The cache is used only by pools without idle or lifetime limits, whose idle items need no sweeping.
    private bool UsesCache => _sweepTimer is null;

    private string NameSuffix => _options.Name is null ? string.Empty : $" '{_options.Name}'";

    // Checked each time the lock is taken, in debug builds, as System.Threading.Channels does: what every path that
    // held the lock before must have left true.
    [Conditional("DEBUG")]
    private void AssertInvariantsLocked()
    {
        Debug.Assert(_lock.IsHeldByCurrentThread, "The invariants are checked under the pool's lock.");
        Debug.Assert(_all.Count == _created - _destroyed, "Created - Destroyed = the items that exist.");
        Debug.Assert(InUseLocked >= 0 && IdleCountLocked <= _all.Count, "Size = Idle + InUse, neither negative.");
        Debug.Assert(_capacityUsed >= _all.Count + _destroying.Count, "Every item, and every one being destroyed, holds a place.");
        Debug.Assert(_capacityUsed <= _options.MaxSize, "Never more than MaxSize places.");
        Debug.Assert(_idle.Count == 0 || _waiters.Count == 0, "No item stays idle while a renter waits.");
        foreach (var slot in _idle)
        {
            Debug.Assert(_all.Contains(slot) && !slot.IsLeased, "An idle item exists and is not leased.");
        }

        _waiters.AssertInvariants();
    }

    internal void RecordWait(long waitStarted)
    {
        if (waitStarted != 0 && ScopeMetrics.PoolWaitDuration.Enabled)
        {
            ScopeMetrics.PoolWaitDuration.Record(_time.GetElapsedTime(waitStarted).TotalSeconds, _poolTag);
        }
    }

    private static TimeSpan? Finite(TimeSpan? value) => value == Timeout.InfiniteTimeSpan ? null : value;

    private void ReportFailure(Exception failure) => ScopeDiagnostics.ReportUnobserved(_options.Name, failure);

    private void ThrowIfDisposedLocked()
    {
        if (_disposal is not null)
        {
            ThrowDisposed();
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowDisposed() => throw new ObjectDisposedException(GetType().Name, $"The pool{NameSuffix} is disposed.");

    /// <summary>Reads the pool's gauges for the meter; held weakly there, so it does not keep the pool alive.</summary>
    private sealed class MetricsSource(AsyncPool<T> pool) : ScopeMetrics.IObservedSource
    {
        private readonly WeakReference<AsyncPool<T>> _pool = new(pool);

        public void Observe(ScopeMetrics.PoolMeasure measure, List<Measurement<long>> measurements)
        {
            if (measure == ScopeMetrics.PoolMeasure.QueueDepth || !_pool.TryGetTarget(out var target))
            {
                return;
            }

            var statistics = target.Statistics;
            long value = measure switch
            {
                ScopeMetrics.PoolMeasure.Size => statistics.Size,
                ScopeMetrics.PoolMeasure.InUse => statistics.InUse,
                ScopeMetrics.PoolMeasure.Idle => statistics.Idle,
                _ => statistics.Waiters,
            };
            measurements.Add(new Measurement<long>(value, target._poolTag));
        }
    }
}
