using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Tasks.Sources;

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
public sealed class AsyncPool<T> : IAsyncDisposable
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
    private int _waiterCount; // the waiters queued, readable without the lock

    // The renters waiting, first-in first-out, linked through the waiters themselves so that a cancelled or timed-out
    // waiter leaves in O(1); guarded by _lock. A queued waiter is live: whoever takes it out completes it, once.
    private Waiter? _firstWaiter;
    private Waiter? _lastWaiter;

    // Waiters done with, for the next waits: pushed without the lock, popped only under it (so no pop sees a waiter
    // leave and come back between its read and its exchange). At most _options.MaxSize are kept: between two waits at
    // most that many renters hold an item.
    private Waiter? _spareWaiters;
    private int _spareWaiterCount;
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
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="factory"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException"><see cref="AsyncPoolOptions{T}.TimeProvider"/> is null.</exception>
    public AsyncPool(Func<CancellationToken, ValueTask<T>> factory, AsyncPoolOptions<T>? options = null)
    {
        ArgumentNullException.ThrowIfNull(factory);
        options ??= new AsyncPoolOptions<T>();
        options.ThrowIfInvalid();
        _factory = factory;
        _options = options;
        _time = options.TimeProvider;
        _acquireTimeout = Finite(options.AcquireTimeout);
        _idleTimeout = Finite(options.IdleTimeout);
        _maxLifetime = Finite(options.MaxLifetime);
        _waitsDirectly = options.Validate is null && _maxLifetime is null;
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

    /// <summary>A consistent snapshot of the pool's counts.</summary>
    public PoolStatistics Statistics
    {
        get
        {
            lock (_lock)
            {
                int idle = IdleCountLocked;
                return new PoolStatistics(idle + InUseLocked, idle, InUseLocked, _waiterCount, _created, _destroyed);
            }
        }
    }

    // Items that exist and are not idle: leased, or between a lease and the pool. Derived, so that the cached item
    // can come and go without the lock.
    private int InUseLocked => (int)(_created - _destroyed) - IdleCountLocked;

    private int IdleCountLocked => _idle.Count + (Volatile.Read(ref _cached) is null ? 0 : 1);

    // The cache is used only by pools without idle or lifetime limits, whose idle items need no sweeping.
    private bool UsesCache => _sweepTimer is null;

    /// <summary>Rents an item: an idle one (validated, if <see cref="AsyncPoolOptions{T}.Validate"/> is set), a new
    /// one if the pool is below its size, else the next one returned, in first-in first-out order.</summary>
    /// <param name="cancellationToken">Cancels the wait (and the factory or validation it is running). A cancelled
    /// waiter takes nothing: an item returned at that moment goes to the next waiter or back to the pool.</param>
    /// <returns>The lease; completes synchronously, without allocating, when an idle item needs no validation. Await it
    /// once, or call <see cref="ValueTask{TResult}.AsTask"/> once to await it more often or to block on it: a rent that
    /// waits may be backed by a waiter that the pool reuses for the next rent once this one was read.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="TimeoutException"><see cref="AsyncPoolOptions{T}.AcquireTimeout"/> elapsed; the message names
    /// the pool and its size.</exception>
    /// <exception cref="ObjectDisposedException">The pool is disposed, or was disposed while waiting.</exception>
    /// <remarks>The factory's exception, when this rent created an item and the factory failed, propagates.</remarks>
    public ValueTask<PoolLease<T>> RentAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<PoolLease<T>>(cancellationToken);
        }

        PoolSlot<T>? slot;
        bool create = false;
        Waiter? waiter = null;

        // Read before the exchange: under contention the cache is mostly empty, and a read does not take the line. Not
        // while renters wait: they were first (an item cached at that moment goes to the first of them).
        if (Volatile.Read(ref _cached) is not null && Volatile.Read(ref _waiterCount) == 0 && Interlocked.Exchange(ref _cached, null) is { } cached)
        {
            if (_disposal is not null)
            {
                ReturnToPool(cached); // destroys it
                ThrowDisposed();
            }

            if (_options.MinIdle > 0)
            {
                EnsureMinIdle();
            }

            return _options.Validate is null
                ? new(cached.Lease(_options.Name))
                : RentSlowAsync(cached, create: false, waiter: null, ScopeTracker.CaptureStackIfTracking(), cancellationToken);
        }

        // Captured before a waiter is queued: a direct waiter's lease is made when it is handed an item.
        string? rentStackTrace = ScopeTracker.CaptureStackIfTracking();
        lock (_lock)
        {
            ThrowIfDisposedLocked();
            slot = PopIdleLocked();
            if (slot is null)
            {
                // Queued here rather than in RentSlowAsync: one acquisition of the lock per wait, not two.
                waiter = ReserveOrQueueLocked(_waitsDirectly, rentStackTrace, cancellationToken);
                create = waiter is null;
            }
        }

        if (_options.MinIdle > 0)
        {
            EnsureMinIdle();
        }

        if (slot is not null && _options.Validate is null && !IsExpired(slot))
        {
            return new(slot.Lease(_options.Name));
        }

        return waiter is { IsDirect: true }
            ? WaitDirectly(waiter, rentStackTrace, cancellationToken)
            : RentSlowAsync(slot, create, waiter, rentStackTrace, cancellationToken);
    }

    /// <summary>Rents an idle item if one is ready now; never waits and never creates an item.</summary>
    /// <param name="lease">The lease, when this returns <see langword="true"/>.</param>
    /// <returns><see langword="true"/> when an idle item was leased.</returns>
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    /// <remarks>With <see cref="AsyncPoolOptions{T}.Validate"/> set, an idle item is leased only when its validation
    /// completes synchronously; one still validating goes back to the pool when done, and this returns
    /// <see langword="false"/>.</remarks>
    public bool TryRent(out PoolLease<T> lease)
    {
        while (true)
        {
            PoolSlot<T>? slot;
            lock (_lock)
            {
                ThrowIfDisposedLocked();
                slot = PopIdleLocked();
            }

            if (slot is null)
            {
                lease = default;
                return false;
            }

            if (_options.MinIdle > 0)
            {
                EnsureMinIdle();
            }

            if (IsExpired(slot))
            {
                _ = DestroyAsync(slot);
                continue;
            }

            if (_options.Validate is null)
            {
                lease = slot.Lease(_options.Name);
                return true;
            }

            ValueTask<bool> validation;
            try
            {
                validation = _options.Validate(slot.Item, CancellationToken.None);
            }
#pragma warning disable CA1031 // A validation that throws marks the item invalid; the failure is reported.
            catch (Exception e)
#pragma warning restore CA1031
            {
                ReportFailure(e);
                _ = DestroyAsync(slot);
                continue;
            }

            if (!validation.IsCompleted)
            {
                _ = FinishValidationAsync(slot, validation);
                lease = default;
                return false;
            }

            bool valid;
            try
            {
                valid = validation.GetAwaiter().GetResult();
            }
#pragma warning disable CA1031 // A validation that throws marks the item invalid; the failure is reported.
            catch (Exception e)
#pragma warning restore CA1031
            {
                ReportFailure(e);
                valid = false;
            }

            if (valid)
            {
                lease = slot.Lease(_options.Name);
                return true;
            }

            _ = DestroyAsync(slot);
        }
    }

    /// <summary>Rents an item, runs <paramref name="body"/> with it, and returns it; on failure the item is destroyed or
    /// returned as <see cref="AsyncPoolOptions{T}.DiscardOn"/> decides (destroyed by default).</summary>
    /// <param name="body">The work with the item.</param>
    /// <param name="cancellationToken">Passed to the rent and to the body.</param>
    /// <returns>A task that completes when the item is back in the pool or destroyed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <remarks>The body's exception propagates unchanged, once its item is back or destroyed; an
    /// <see cref="OperationCanceledException"/> from the body is a failure like any other for
    /// <see cref="AsyncPoolOptions{T}.DiscardOn"/>. Rent failures (cancellation while waiting, the acquire timeout, the
    /// factory's exception, disposal) propagate as from <see cref="RentAsync"/>, and the body does not run.</remarks>
    public Task UseAsync(Func<T, CancellationToken, Task> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return UseCoreAsync(body, cancellationToken);
    }

    /// <summary>Rents an item, runs <paramref name="body"/> with it, returns it, and gives back the body's result; on
    /// failure the item is destroyed or returned as <see cref="AsyncPoolOptions{T}.DiscardOn"/> decides.</summary>
    /// <typeparam name="TResult">The type of the body's result.</typeparam>
    /// <param name="body">The work with the item.</param>
    /// <param name="cancellationToken">Passed to the rent and to the body.</param>
    /// <returns>The body's result, once the item is back in the pool.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <remarks>The body's exception propagates unchanged, once its item is back or destroyed; an
    /// <see cref="OperationCanceledException"/> from the body is a failure like any other for
    /// <see cref="AsyncPoolOptions{T}.DiscardOn"/>. Rent failures (cancellation while waiting, the acquire timeout, the
    /// factory's exception, disposal) propagate as from <see cref="RentAsync"/>, and the body does not run.</remarks>
    public Task<TResult> UseAsync<TResult>(Func<T, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return UseCoreAsync(body, cancellationToken);
    }

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
        List<Waiter> waiters;
        TaskCompletionSource disposal;
        lock (_lock)
        {
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
            while (DequeueWaiterLocked() is { } waiter)
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

    internal ValueTask ReturnAsync(PoolLeaseHandle<T> handle, long version)
    {
        var slot = handle.Slot;
        if (!slot.TryEndLease(handle, version, out bool discard))
        {
            return default; // a second return, or a copy's
        }

        if (discard || _disposal is not null || IsExpired(slot))
        {
            return new ValueTask(DestroyAsync(slot));
        }

        if (_options.Reset is not null)
        {
            return new ValueTask(ResetAndReturnAsync(slot));
        }

        ReturnToPool(slot);
        return default;
    }

    internal void OnLeaseCollected(PoolSlot<T> slot)
    {
        // Finalizer thread: the lease was dropped. Its item is not destroyed here (whoever dropped the lease may still
        // hold the item); the slot's capacity is reclaimed and the leak reported (a tracked lease through its
        // tracker, and a lease already reported when the pool drained not twice).
        lock (_lock)
        {
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
            ScopeDiagnostics.ReportLeak(slot.DescribeLease());
        }
    }

    private string NameSuffix => _options.Name is null ? string.Empty : $" '{_options.Name}'";

    // What a rent does after RentAsync's lock: with an item, checks it; with a reserved place, creates an item; with a
    // queued waiter, waits; then, if that gave it neither a lease nor a place, tries again. rentStackTrace: where
    // RentAsync was called, when leak tracking is on; the lease may be made on another thread. The state machine is not
    // pooled (PoolingAsyncValueTaskMethodBuilder): a ValueTask awaited twice, against the rules, would then hand a
    // pooled box back twice and break another rent; this way it reads its own outcome again.
    private async ValueTask<PoolLease<T>> RentSlowAsync(PoolSlot<T>? slot, bool create, Waiter? waiter, string? rentStackTrace, CancellationToken cancellationToken)
    {
        Debug.Assert((slot is not null ? 1 : 0) + (create ? 1 : 0) + (waiter is not null ? 1 : 0) == 1, "A rent has an item, a place, or a waiter.");
        long waitStarted = 0;
        while (true)
        {
            // An item cached by a return that did not yet see this waiter: it goes to the first waiter, maybe this one.
            if (waiter is not null && Volatile.Read(ref _cached) is not null && Interlocked.Exchange(ref _cached, null) is { } raced)
            {
                ReturnToPool(raced, unvalidated: true);
            }

            if (waiter is not null)
            {
                if (waitStarted == 0)
                {
                    waitStarted = _time.GetTimestamp();
                }

                // Inline rather than in a helper: a helper's state machine would be one more object per wait.
                var registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Pool.AbandonWait((Waiter)state!, token), waiter);
                var timer = StartAcquireTimer(waiter, waitStarted);
                try
                {
                    slot = await waiter.WaitAsync().ConfigureAwait(false);
                }
                finally
                {
                    // Dispose, not Unregister: it waits for a cancellation callback that is running, so that none can
                    // reach the waiter once it serves another renter.
                    registration.Dispose();
                    if (timer is null)
                    {
                        RecycleWaiter(waiter);
                    }
                    else
                    {
                        // A timer's callback may still be on its way: this waiter serves no other wait, so a late
                        // callback finds it out of the queue and does nothing.
                        timer.Dispose();
                    }
                }

                waiter = null;
                create = slot is null; // handed a place in the pool rather than an item
            }

            if (slot is not null)
            {
                if (IsExpired(slot))
                {
                    await DestroyAsync(slot).ConfigureAwait(false);
                }
                else if (slot.NeedsValidation && _options.Validate is { } validate && !await ValidateAsync(validate, slot, cancellationToken).ConfigureAwait(false))
                {
                    await DestroyAsync(slot).ConfigureAwait(false);
                }
                else
                {
                    RecordWait(waitStarted);
                    return slot.Lease(_options.Name, rentStackTrace);
                }
            }
            else if (create)
            {
                slot = await CreateAsync(forMinIdle: false, cancellationToken).ConfigureAwait(false);
                RecordWait(waitStarted);
                return slot.Lease(_options.Name, rentStackTrace);
            }

            lock (_lock)
            {
                ThrowIfDisposedLocked();
                slot = PopIdleLocked();
                waiter = slot is null ? ReserveOrQueueLocked(direct: false, rentStackTrace: null, cancellationToken) : null;
                create = slot is null && waiter is null;
            }
        }
    }

    // A renter whose waiter is queued awaits that waiter itself, which hands it the lease (see Waiter.GetResult): no
    // state machine between them, as a channel's reader awaits its operation. The waiter was queued by RentAsync with
    // the token and context that a creation on its behalf needs; what only its renter reads is set here.
    private ValueTask<PoolLease<T>> WaitDirectly(Waiter waiter, string? rentStackTrace, CancellationToken cancellationToken)
    {
        // An item cached by a return that did not yet see this waiter: it goes to the first waiter, maybe this one.
        if (Volatile.Read(ref _cached) is not null && Interlocked.Exchange(ref _cached, null) is { } raced)
        {
            ReturnToPool(raced);
        }

        // The clock is read only for what needs it: a wait that starts while nobody listens is not timed.
        long waitStarted = _acquireTimeout is not null || ScopeMetrics.PoolWaitDuration.Enabled ? _time.GetTimestamp() : 0;
        waiter.WaitStarted = waitStarted;
        waiter.Registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Pool.AbandonWait((Waiter)state!, token), waiter);
        waiter.Timer = StartAcquireTimer(waiter, waitStarted);
        return waiter.WaitForLeaseAsync();
    }

    // A place was handed to a waiter that waits directly: its item is created here, on the thread pool, in the renter's
    // context and with its token, and handed over as any other; the factory's failure is the renter's.
    private async Task CreateForWaiterAsync(Waiter waiter)
    {
        PoolSlot<T> slot;
        try
        {
            slot = await CreateAsync(forMinIdle: false, waiter.CancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Not swallowed: the renter's await rethrows it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            waiter.SetException(e);
            return;
        }

        waiter.Hand(slot);
    }

    // No idle item: reserves a place to create one (null) if the pool has room and nobody waits for it, else queues a
    // waiter and returns it. direct: the renter awaits the waiter itself (see WaitDirectly).
    private Waiter? ReserveOrQueueLocked(bool direct, string? rentStackTrace, CancellationToken cancellationToken)
    {
        if (_waiterCount == 0 && _capacityUsed < _options.MaxSize)
        {
            ReserveLocked();
            return null;
        }

        var waiter = RentWaiterLocked();
        if (direct)
        {
            // Set before it is queued: a place handed to it starts a creation that reads them.
            waiter.IsDirect = true;
            waiter.CancellationToken = cancellationToken;
            waiter.Context = ExecutionContext.Capture();
            waiter.RentStackTrace = rentStackTrace;
        }

        EnqueueWaiterLocked(waiter);
        return waiter;
    }

    // AcquireTimeout bounds the whole rent, however many times it had to wait.
    private ITimer? StartAcquireTimer(Waiter waiter, long waitStarted) =>
        _acquireTimeout is { } timeout
            ? _time.CreateTimer(
                static state => ((Waiter)state!).Pool.AbandonWait((Waiter)state!, canceled: null),
                waiter,
                TimeSpan.FromTicks(Math.Max(1, (timeout - _time.GetElapsedTime(waitStarted)).Ticks)),
                Timeout.InfiniteTimeSpan)
            : null;

    // A waiter gives up (cancelled or timed out). Only a queued waiter can: one out of the queue was handed an item or
    // a place, or failed by disposal, and keeps that outcome. So a waiter never takes an item it gave up on.
    private void AbandonWait(Waiter waiter, CancellationToken? canceled)
    {
        lock (_lock)
        {
            if (!waiter.IsQueued)
            {
                return;
            }

            Exception reason = canceled is { } token
                ? new OperationCanceledException(token)
                : new TimeoutException(
                    $"Timed out after {_acquireTimeout} waiting for an item of pool{NameSuffix} (MaxSize {_options.MaxSize}: {InUseLocked} in use, {_waiterCount} waiting).");
            RemoveWaiterLocked(waiter);
            waiter.SetException(reason);
        }
    }

    // A waiter for a renter about to wait: a spare one, else a new one.
    private Waiter RentWaiterLocked()
    {
        while (Volatile.Read(ref _spareWaiters) is { } spare)
        {
            if (ReferenceEquals(Interlocked.CompareExchange(ref _spareWaiters, spare.NextSpare, spare), spare))
            {
                Interlocked.Decrement(ref _spareWaiterCount);
                spare.NextSpare = null;
                return spare;
            }
        }

        return new Waiter(this);
    }

    // The renter is done with its waiter: its outcome was read (or it never was completed), and no cancellation or
    // timer callback can reach it any more. Reset makes a stale ValueTask over it fail instead of reading the next
    // renter's outcome.
    private void RecycleWaiter(Waiter waiter)
    {
        Debug.Assert(!waiter.IsQueued, "A queued waiter is still waiting.");
        Debug.Assert(waiter.Timer is null, "A waiter that had a timer is not reused: a late callback could reach it.");
        if (Interlocked.Increment(ref _spareWaiterCount) > _options.MaxSize)
        {
            Interlocked.Decrement(ref _spareWaiterCount);
            return;
        }

        waiter.Reset();
        Waiter? top = Volatile.Read(ref _spareWaiters);
        while (true)
        {
            waiter.NextSpare = top;
            var seen = Interlocked.CompareExchange(ref _spareWaiters, waiter, top);
            if (ReferenceEquals(seen, top))
            {
                return;
            }

            top = seen;
        }
    }

    private void EnqueueWaiterLocked(Waiter waiter)
    {
        Debug.Assert(!waiter.IsQueued && waiter.Previous is null && waiter.Next is null, "A waiter is queued once.");
        waiter.Previous = _lastWaiter;
        if (_lastWaiter is null)
        {
            _firstWaiter = waiter;
        }
        else
        {
            _lastWaiter.Next = waiter;
        }

        _lastWaiter = waiter;
        waiter.IsQueued = true;

        // A full fence before the renter reads the cache, as ReturnToPool reads the count after publishing there: one of
        // the two sees the other.
        Interlocked.Increment(ref _waiterCount);
    }

    // The first waiter, taken out of the queue: the caller must complete it.
    private Waiter? DequeueWaiterLocked()
    {
        var first = _firstWaiter;
        if (first is not null)
        {
            RemoveWaiterLocked(first);
        }

        return first;
    }

    private void RemoveWaiterLocked(Waiter waiter)
    {
        Debug.Assert(waiter.IsQueued, "Only a queued waiter leaves the queue.");
        if (waiter.Previous is null)
        {
            Debug.Assert(ReferenceEquals(_firstWaiter, waiter), "A waiter without a predecessor is the first.");
            _firstWaiter = waiter.Next;
        }
        else
        {
            waiter.Previous.Next = waiter.Next;
        }

        if (waiter.Next is null)
        {
            Debug.Assert(ReferenceEquals(_lastWaiter, waiter), "A waiter without a successor is the last.");
            _lastWaiter = waiter.Previous;
        }
        else
        {
            waiter.Next.Previous = waiter.Previous;
        }

        waiter.Previous = null;
        waiter.Next = null;
        waiter.IsQueued = false;
        Volatile.Write(ref _waiterCount, _waiterCount - 1);
        Debug.Assert(_waiterCount >= 0 && (_waiterCount == 0) == (_firstWaiter is null), "The count matches the queue.");
    }

    private async ValueTask<bool> ValidateAsync(Func<T, CancellationToken, ValueTask<bool>> validate, PoolSlot<T> slot, CancellationToken cancellationToken)
    {
        try
        {
            return await validate(slot.Item, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            ReturnToPool(slot, unvalidated: true); // the renter gave up; the item is not at fault, nor checked
            throw;
        }
#pragma warning disable CA1031 // A validation that throws marks the item invalid; the failure is reported.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportFailure(e);
            return false;
        }
    }

    private async Task FinishValidationAsync(PoolSlot<T> slot, ValueTask<bool> validation)
    {
        bool valid;
        try
        {
            valid = await validation.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A validation that throws marks the item invalid; the failure is reported.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportFailure(e);
            valid = false;
        }

        if (valid && _disposal is null)
        {
            ReturnToPool(slot);
        }
        else
        {
            await DestroyAsync(slot).ConfigureAwait(false);
        }
    }

    private async Task<PoolSlot<T>> CreateAsync(bool forMinIdle, CancellationToken cancellationToken)
    {
        T item;
        try
        {
            item = await _factory(cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"The factory of pool{NameSuffix} returned null.");
        }
        catch
        {
            if (forMinIdle)
            {
                lock (_lock)
                {
                    _minIdleCreating--;
                }
            }

            // A failed background creation is retried by its timer, never at once: a factory that fails
            // synchronously would otherwise recurse without end.
            ReleaseCapacity(refillMinIdle: !forMinIdle);
            throw;
        }

        var slot = new PoolSlot<T>(this, item, _time.GetTimestamp());
        bool disposed;
        lock (_lock)
        {
            if (forMinIdle)
            {
                _minIdleCreating--;
            }

            _created++;
            _all.Add(slot);
            disposed = _disposal is not null;
        }

        if (disposed)
        {
            await DestroyAsync(slot).ConfigureAwait(false);
            throw new ObjectDisposedException(GetType().Name, $"The pool{NameSuffix} was disposed.");
        }

        return slot;
    }

    private async Task ResetAndReturnAsync(PoolSlot<T> slot)
    {
        try
        {
            await _options.Reset!(slot.Item).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A reset that throws leaves the item in an unknown state: it is destroyed and the failure reported.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportFailure(e);
            await DestroyAsync(slot).ConfigureAwait(false);
            return;
        }

        ReturnToPool(slot);
    }

    // An item leaves use: to the first live waiter, else to the idle list. unvalidated: an idle item whose validation
    // did not finish; a waiter it is handed to validates it, as it would have found it idle.
    private void ReturnToPool(PoolSlot<T> slot, bool unvalidated = false)
    {
        if (UsesCache && Volatile.Read(ref _waiterCount) == 0)
        {
            slot.NeedsValidation = true;
            if (Interlocked.CompareExchange(ref _cached, slot, null) is null)
            {
                // Checked again after publishing: a renter that registered as a waiter (or a disposal) meanwhile reads
                // the cache after registering, so one of the two sees the other. Take back whatever is there.
                if (Volatile.Read(ref _waiterCount) == 0 && _disposal is null)
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
            if (_disposal is not null)
            {
                destroy = true;
            }
            else
            {
                if (DequeueWaiterLocked() is { } waiter)
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
        if (_waiterCount > 0)
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
            if (DequeueWaiterLocked() is { } waiter)
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

    private async Task DestroyAsync(PoolSlot<T> slot)
    {
        lock (_lock)
        {
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
                // An item kept only for MinIdle has an idle expiry in the past: it waits for a later sweep (the next
                // return schedules one) instead of making this one spin.
                long due = NextExpiry(slot);
                if (due <= now && _maxLifetime is { } lifetime)
                {
                    due = slot.CreatedAt + (long)(lifetime.TotalSeconds * _time.TimestampFrequency);
                }

                if (due > now && due < _sweepDue)
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
            _minIdleRetryDelay = TimeSpan.FromSeconds(1);
        }

        slot.NeedsValidation = true;
        ReturnToPool(slot);
    }

    private void ScheduleMinIdleRetry()
    {
        lock (_lock)
        {
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

    private async Task UseCoreAsync(Func<T, CancellationToken, Task> body, CancellationToken cancellationToken)
    {
        var lease = await RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await body(lease.Value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            DiscardOnFailure(lease, e);
            throw;
        }
        finally
        {
            await lease.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<TResult> UseCoreAsync<TResult>(Func<T, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken)
    {
        var lease = await RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await body(lease.Value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            DiscardOnFailure(lease, e);
            throw;
        }
        finally
        {
            await lease.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void DiscardOnFailure(PoolLease<T> lease, Exception failure)
    {
        bool discard;
        try
        {
            discard = _options.DiscardOn?.Invoke(failure) ?? true;
        }
#pragma warning disable CA1031 // A predicate that throws cannot vouch for the item: it is destroyed and the failure reported.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ReportFailure(e);
            discard = true;
        }

        if (discard)
        {
            lease.Discard();
        }
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
            CheckDrainedLocked();
        }

        await _drained!.Task.WaitAsync(_options.DrainTimeout, _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_drained.Task.IsCompleted)
        {
            List<PoolSlot<T>> outstanding = [];
            List<PoolSlot<T>> destroying;
            lock (_lock)
            {
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
                    ScopeDiagnostics.ReportLeak(slot.DescribeLease());
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

    private void RecordWait(long waitStarted)
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

    /// <summary>
    /// A renter waiting for an item; its outcome is the item, or null for a place to create one. Reused across waits,
    /// as <c>System.Threading.Channels</c> reuses its operations: each wait is one version of the source, and a
    /// <see cref="ValueTask{TResult}"/> of an earlier version fails rather than read a later renter's outcome.
    /// </summary>
    /// <remarks>Two ways to wait. <c>RentSlowAsync</c> awaits the item or place (<see cref="WaitAsync"/>) and goes on
    /// from there. A direct waiter (<see cref="WaitForLeaseAsync"/>) is awaited by the renter itself for its lease: it
    /// is only handed items, a place being turned into an item first (<see cref="IThreadPoolWorkItem.Execute"/>).</remarks>
    private sealed class Waiter(AsyncPool<T> pool) : IValueTaskSource<PoolSlot<T>?>, IValueTaskSource<PoolLease<T>>, IThreadPoolWorkItem
    {
        // Continuations never run inline: the waiter is completed under the pool's lock.
        private ManualResetValueTaskSourceCore<PoolSlot<T>?> _core = new() { RunContinuationsAsynchronously = true };

        public AsyncPool<T> Pool { get; } = pool;

        // The queue's links and membership; guarded by the pool's lock.
        public Waiter? Previous { get; set; }

        public Waiter? Next { get; set; }

        public bool IsQueued { get; set; }

        // The link in the pool's spare waiters.
        public Waiter? NextSpare { get; set; }

        // A direct waiter's: set before it is queued, for a creation on its behalf.
        public bool IsDirect { get; set; }

        public CancellationToken CancellationToken { get; set; }

        public ExecutionContext? Context { get; set; }

        // A direct waiter's: set after it is queued, read only by its renter's GetResult.
        public long WaitStarted { get; set; }

        public string? RentStackTrace { get; set; }

        // A direct waiter's lease, from the moment it is handed an item until its renter reads it.
        public PoolLease<T> HandedLease { get; private set; }

        public CancellationTokenRegistration Registration { get; set; }

        public ITimer? Timer { get; set; }

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
                HandedLease = slot.Lease(Pool.Name, RentStackTrace);
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
            HandedLease = default;
            Registration = default;
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
            var timer = Timer;

            // Dispose, not Unregister: it waits for a cancellation callback that is running, so that none can reach
            // the waiter once it serves another renter.
            Registration.Dispose();
            try
            {
                _ = _core.GetResult(token);
            }
            finally
            {
                if (timer is null)
                {
                    pool.RecycleWaiter(this);
                }
                else
                {
                    // A timer's callback may still be on its way: this waiter serves no other wait, so a late
                    // callback finds it out of the queue and does nothing.
                    timer.Dispose();
                }
            }

            pool.RecordWait(waitStarted);
            return lease;
        }

        // A place was handed to this direct waiter: create its item in its renter's context.
        void IThreadPoolWorkItem.Execute()
        {
            if (Context is { } context)
            {
                ExecutionContext.Run(context, static state => _ = ((Waiter)state!).Pool.CreateForWaiterAsync((Waiter)state!), this);
            }
            else
            {
                _ = Pool.CreateForWaiterAsync(this);
            }
        }
    }

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
