using System.Diagnostics;

namespace AsyncScopes;

// Renting and returning: the public ways to rent, the slow path of a rent that must wait, create or validate, and the
// return of a lease.
public sealed partial class AsyncPool<T>
{
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
        PoolWaiter<T>? waiter = null;

        // Read before the exchange: under contention the cache is mostly empty, and a read does not take the line. Not
        // while renters wait: they were first (an item cached at that moment goes to the first of them).
        if (Volatile.Read(ref _cached) is not null && _waiters.Count == 0 && Interlocked.Exchange(ref _cached, null) is { } cached)
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
            AssertInvariantsLocked();
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
            ? WaitDirectly(waiter, cancellationToken)
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
                AssertInvariantsLocked();
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

    // What a rent does after RentAsync's lock: with an item, checks it; with a reserved place, creates an item; with a
    // queued waiter, waits; then, if that gave it neither a lease nor a place, tries again. rentStackTrace: where
    // RentAsync was called, when leak tracking is on; the lease may be made on another thread. The state machine is not
    // pooled (PoolingAsyncValueTaskMethodBuilder): a ValueTask awaited twice, against the rules, would then hand a
    // pooled box back twice and break another rent; this way it reads its own outcome again.
    private async ValueTask<PoolLease<T>> RentSlowAsync(PoolSlot<T>? slot, bool create, PoolWaiter<T>? waiter, string? rentStackTrace, CancellationToken cancellationToken)
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

                BeginWait(waiter, waitStarted, cancellationToken);
                try
                {
                    slot = await waiter.WaitAsync().ConfigureAwait(false);
                }
                finally
                {
                    waiter.EndWait();
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
                    return slot.Lease(_options.Name, rentStackTrace, ScopeTracker.Current); // in the renter's flow
                }
            }
            else if (create)
            {
                slot = await CreateAsync(forMinIdle: false, cancellationToken).ConfigureAwait(false);
                RecordWait(waitStarted);
                return slot.Lease(_options.Name, rentStackTrace, ScopeTracker.Current); // in the renter's flow
            }

            lock (_lock)
            {
                AssertInvariantsLocked();
                ThrowIfDisposedLocked();
                slot = PopIdleLocked();
                waiter = slot is null ? ReserveOrQueueLocked(direct: false, rentStackTrace: null, cancellationToken) : null;
                create = slot is null && waiter is null;
            }
        }
    }

    // A renter whose waiter is queued awaits that waiter itself, which hands it the lease (see PoolWaiter.GetResult): no
    // state machine between them, as a channel's reader awaits its operation. The waiter was queued by RentAsync with
    // the token, context and stack that a hand-over or a creation on its behalf needs.
    private ValueTask<PoolLease<T>> WaitDirectly(PoolWaiter<T> waiter, CancellationToken cancellationToken)
    {
        // An item cached by a return that did not yet see this waiter: it goes to the first waiter, maybe this one.
        if (Volatile.Read(ref _cached) is not null && Interlocked.Exchange(ref _cached, null) is { } raced)
        {
            ReturnToPool(raced);
        }

        // The clock is read only for what needs it: a wait that starts while nobody listens is not timed.
        long waitStarted = _acquireTimeout is not null || ScopeMetrics.PoolWaitDuration.Enabled ? _time.GetTimestamp() : 0;
        BeginWait(waiter, waitStarted, cancellationToken);
        return waiter.WaitForLeaseAsync();
    }

    // What ends a wait early, in both ways of waiting: the renter's token, and AcquireTimeout, which bounds the whole
    // rent however many times it had to wait. Undone by PoolWaiter.EndWait.
    private void BeginWait(PoolWaiter<T> waiter, long waitStarted, CancellationToken cancellationToken)
    {
        waiter.WaitStarted = waitStarted;
        waiter.Span = ScopeTracing.StartPoolWaitSpan(_options.Name);
        waiter.Registration = cancellationToken.UnsafeRegister(static (state, token) => ((PoolWaiter<T>)state!).Pool.AbandonWait((PoolWaiter<T>)state!, token), waiter);
        waiter.Timer = _acquireTimeout is { } timeout
            ? _time.CreateTimer(
                static state => ((PoolWaiter<T>)state!).Pool.AbandonWait((PoolWaiter<T>)state!, canceled: null),
                waiter,
                TimeSpan.FromTicks(Math.Max(1, (timeout - _time.GetElapsedTime(waitStarted)).Ticks)),
                Timeout.InfiniteTimeSpan)
            : null;
    }

    // A place was handed to a waiter that waits directly: its item is created here, on the thread pool, in the renter's
    // context and with its token, and handed over as any other; the factory's failure is the renter's.
    internal async Task CreateForWaiterAsync(PoolWaiter<T> waiter)
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
                    AssertInvariantsLocked();
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
            AssertInvariantsLocked();
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
}
