namespace AsyncScopes;

/// <summary>
/// A deadline that can be moved while it has not fired: an idle timeout pushed forward by every frame received, a
/// session extended by activity. Its <see cref="Token"/> is cancelled when the deadline passes on its
/// <see cref="TimeProvider"/>, or when the outer token is. Trio's and AnyIO's <c>CancelScope.deadline</c>, Python's
/// <c>asyncio.Timeout.reschedule</c>.
/// </summary>
/// <remarks>
/// <para>Moving it (<see cref="Reschedule"/>, <see cref="Extend"/>) allocates nothing and is thread-safe; a deadline
/// moved into the past fires at once. Moving it later leaves its timer alone and does not even read the clock: the
/// timer wakes at the earlier time and sets itself for the rest (so a move into the past that is still later than
/// where the timer wakes, which can only happen when that timer is due already, fires as the timer's callback runs, a
/// moment later, not during the call). Once it fired (or the outer token cancelled it, or it was disposed) it stays
/// where it is: moving it returns <see langword="false"/>.</para>
/// <para>Callbacks registered on <see cref="Token"/> that throw when the deadline fires are reported through
/// <see cref="ScopeDiagnostics.UnobservedFailure"/>: nobody awaits a timer's thread.</para>
/// <para>Dispose it when done: the timer and the link to the outer token are released; <see cref="Token"/> is never
/// cancelled after that.</para>
/// </remarks>
public sealed class MovableDeadline : IDisposable
{
    private const string Name = "MovableDeadline";

    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _source = new();
    private readonly TimeProvider _timeProvider;
    private readonly CancellationTokenRegistration _outerRegistration;
    private readonly ITimer _timer;
    private DateTimeOffset _when;
    private DateTimeOffset _timerWakes = DateTimeOffset.MaxValue; // when the armed timer calls OnTimer; MaxValue when it is not armed
    private bool _ended; // fired, cancelled from outside or disposed: it does not move any more
    private bool _expired;

    private MovableDeadline(DateTimeOffset when, CancellationToken cancellationToken, TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
        _when = when;
        _timer = Cancellation.StartTimer(timeProvider, static state => ((MovableDeadline)state!).OnTimer(), this, Timeout.InfiniteTimeSpan);
        bool due;
        lock (_lock)
        {
            due = ArmOrEnd();
        }

        if (due)
        {
            Fire();
        }
        else if (cancellationToken.CanBeCanceled)
        {
            _outerRegistration = cancellationToken.UnsafeRegister(static state => ((MovableDeadline)state!).OnOuterCancelled(), this);
        }
    }

    /// <summary>The token cancelled when the deadline passes or the outer token is cancelled.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>When the deadline fires, on <see cref="TimeProvider"/>'s clock; where it stopped once it ended.</summary>
    public DateTimeOffset When
    {
        get
        {
            lock (_lock)
            {
                return _when;
            }
        }
    }

    /// <summary><see langword="true"/> once the deadline itself passed (not when the outer token cancelled it).</summary>
    public bool Expired => Volatile.Read(ref _expired);

    /// <summary>The clock of the deadline.</summary>
    public TimeProvider TimeProvider => _timeProvider;

    /// <summary>A deadline <paramref name="delay"/> from now.</summary>
    /// <param name="delay">From now; <see cref="TimeSpan.Zero"/> fires at once.</param>
    /// <param name="cancellationToken">An outer token: its cancellation cancels <see cref="Token"/> as well.</param>
    /// <param name="timeProvider">The clock; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <returns>The deadline, armed.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative, or puts the deadline beyond
    /// <see cref="DateTimeOffset.MaxValue"/>.</exception>
    public static MovableDeadline After(TimeSpan delay, CancellationToken cancellationToken = default, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        timeProvider ??= TimeProvider.System;
        return new MovableDeadline(timeProvider.GetUtcNow() + delay, cancellationToken, timeProvider);
    }

    /// <summary>A deadline at <paramref name="when"/>; one in the past fires at once.</summary>
    /// <param name="when">When it fires, on <paramref name="timeProvider"/>'s clock.</param>
    /// <param name="cancellationToken">An outer token: its cancellation cancels <see cref="Token"/> as well.</param>
    /// <param name="timeProvider">The clock; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <returns>The deadline, armed.</returns>
    public static MovableDeadline At(DateTimeOffset when, CancellationToken cancellationToken = default, TimeProvider? timeProvider = null) =>
        new(when, cancellationToken, timeProvider ?? TimeProvider.System);

    /// <summary>Moves the deadline to <paramref name="when"/>, earlier or later; into the past, it fires at once.</summary>
    /// <param name="when">The new deadline, on <see cref="TimeProvider"/>'s clock.</param>
    /// <returns><see langword="false"/> when the deadline had already ended (fired, cancelled from outside,
    /// disposed): it stays where it was.</returns>
    public bool Reschedule(DateTimeOffset when)
    {
        bool due;
        lock (_lock)
        {
            if (_ended)
            {
                return false;
            }

            _when = when;
            due = ArmOrEnd();
        }

        if (due)
        {
            Fire();
        }

        return true;
    }

    /// <summary>Moves the deadline by <paramref name="delta"/> (a negative one brings it closer).</summary>
    /// <param name="delta">How far to move it.</param>
    /// <returns><see langword="false"/> when the deadline had already ended.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The deadline would be outside the range of <see cref="DateTimeOffset"/>.</exception>
    public bool Extend(TimeSpan delta)
    {
        bool due;
        lock (_lock)
        {
            if (_ended)
            {
                return false;
            }

            _when += delta;
            due = ArmOrEnd();
        }

        if (due)
        {
            Fire();
        }

        return true;
    }

    /// <summary>Releases the timer and the link to the outer token; <see cref="Token"/> is not cancelled by it (a deadline
    /// that was firing on another thread as this is called may still cancel it).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _ended = true;
        }

        _timer.Dispose();
        _outerRegistration.Unregister(); // not Dispose: that would wait for a callback running on another thread
    }

    // Under the lock: true when the deadline is due now, and then it has ended (the caller fires it once it let go of
    // the lock, so that no callback on Token runs under it). A deadline moved later leaves the timer alone: it wakes
    // at the earlier time and re-arms for the rest, so that pushing an idle timeout forward on every frame costs a
    // comparison, not a timer operation. A timer cannot wait longer than Cancellation.MaxTimeout: a farther deadline
    // re-arms when it wakes. A timer that counts whole milliseconds wakes up to one early: it re-arms for the rest.
    // Not even the clock is read then: a deadline at or after the timer's wake is the timer's to judge, and if it is
    // past already, the timer is due, and fires it as its callback runs.
    private bool ArmOrEnd()
    {
        if (_when >= _timerWakes)
        {
            return false;
        }

        var now = _timeProvider.GetUtcNow();
        var due = _when - now;
        if (due <= TimeSpan.Zero)
        {
            _ended = true;
            Volatile.Write(ref _expired, true);
            return true;
        }

        due = due > Cancellation.MaxTimeout ? Cancellation.MaxTimeout : due;
        _timer.Change(due, Timeout.InfiniteTimeSpan);
        _timerWakes = now + due;
        return false;
    }

    private void OnTimer()
    {
        bool due;
        lock (_lock)
        {
            // Ended already, or moved later since the timer was set, or farther than a timer waits: re-armed.
            _timerWakes = DateTimeOffset.MaxValue;
            due = !_ended && ArmOrEnd();
        }

        if (due)
        {
            Fire();
        }
    }

    private void OnOuterCancelled()
    {
        lock (_lock)
        {
            if (_ended)
            {
                return;
            }

            _ended = true;
        }

        Fire();
    }

    // Once, after the deadline ended: releases the timer and the link to the outer token (a fired deadline nobody
    // disposes keeps nothing alive), then cancels Token.
    private void Fire()
    {
        _timer.Dispose();
        _outerRegistration.Unregister();
        Cancellation.CancelReportingCallbackFailures(_source, Name);
    }
}
