namespace AsyncScopes;

/// <summary>
/// A deadline that can be moved while it has not fired: an idle timeout pushed forward by every frame received, a
/// session extended by activity. Its <see cref="Token"/> is cancelled when the deadline passes on its
/// <see cref="TimeProvider"/>, or when the outer token is. Trio's and AnyIO's <c>CancelScope.deadline</c>, Python's
/// <c>asyncio.Timeout.reschedule</c>.
/// </summary>
/// <remarks>
/// <para>Moving it (<see cref="Reschedule"/>, <see cref="Extend"/>) allocates nothing and is thread-safe; a deadline
/// moved into the past fires at once. Once it fired (or the outer token cancelled it, or it was disposed) it stays
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
    private bool _ended; // fired, cancelled from outside or disposed: it does not move any more
    private bool _expired;

    private MovableDeadline(DateTimeOffset when, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        _timeProvider = timeProvider;
        _when = when;
        lock (_lock)
        {
            _timer = Cancellation.StartTimer(timeProvider, static state => ((MovableDeadline)state!).OnTimer(), this, Timeout.InfiniteTimeSpan);
            Arm();
        }

        if (cancellationToken.CanBeCanceled)
        {
            _outerRegistration = cancellationToken.UnsafeRegister(static state => ((MovableDeadline)state!).End(expired: false), this);
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
    /// <param name="timeProvider">The clock; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <param name="cancellationToken">An outer token: its cancellation cancels <see cref="Token"/> as well.</param>
    /// <returns>The deadline, armed.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative.</exception>
    public static MovableDeadline After(TimeSpan delay, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        timeProvider ??= TimeProvider.System;
        return new MovableDeadline(timeProvider.GetUtcNow() + delay, timeProvider, cancellationToken);
    }

    /// <summary>A deadline at <paramref name="when"/>; one in the past fires at once.</summary>
    /// <param name="when">When it fires, on <paramref name="timeProvider"/>'s clock.</param>
    /// <param name="timeProvider">The clock; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <param name="cancellationToken">An outer token: its cancellation cancels <see cref="Token"/> as well.</param>
    /// <returns>The deadline, armed.</returns>
    public static MovableDeadline At(DateTimeOffset when, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default) =>
        new(when, timeProvider ?? TimeProvider.System, cancellationToken);

    /// <summary>Moves the deadline to <paramref name="when"/>, earlier or later; into the past, it fires at once.</summary>
    /// <param name="when">The new deadline, on <see cref="TimeProvider"/>'s clock.</param>
    /// <returns><see langword="false"/> when the deadline had already ended (fired, cancelled from outside,
    /// disposed): it stays where it was.</returns>
    public bool Reschedule(DateTimeOffset when)
    {
        lock (_lock)
        {
            if (_ended)
            {
                return false;
            }

            _when = when;
            Arm();
            return true;
        }
    }

    /// <summary>Moves the deadline by <paramref name="delta"/> (a negative one brings it closer).</summary>
    /// <param name="delta">How far to move it.</param>
    /// <returns><see langword="false"/> when the deadline had already ended.</returns>
    public bool Extend(TimeSpan delta)
    {
        lock (_lock)
        {
            if (_ended)
            {
                return false;
            }

            _when += delta;
            Arm();
            return true;
        }
    }

    /// <summary>Releases the timer and the link to the outer token; <see cref="Token"/> is not cancelled by it.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _ended = true;
        }

        _timer.Dispose();
        _outerRegistration.Dispose();
    }

    // Under the lock. A timer cannot wait longer than Cancellation.MaxTimeout: a farther deadline re-arms when it wakes.
    private void Arm()
    {
        var due = _when - _timeProvider.GetUtcNow();
        if (due < TimeSpan.Zero)
        {
            due = TimeSpan.Zero;
        }
        else if (due > Cancellation.MaxTimeout)
        {
            due = Cancellation.MaxTimeout;
        }

        _timer.Change(due, Timeout.InfiniteTimeSpan);
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            if (_ended)
            {
                return;
            }

            if (_timeProvider.GetUtcNow() < _when)
            {
                Arm(); // moved later since the timer was set, or farther than a timer waits
                return;
            }
        }

        End(expired: true);
    }

    private void End(bool expired)
    {
        lock (_lock)
        {
            if (_ended)
            {
                return;
            }

            _ended = true;
            if (expired)
            {
                Volatile.Write(ref _expired, true);
            }
        }

        if (Cancellation.CancelCatchingCallbackFailures(_source) is { } failures)
        {
            foreach (var failure in failures)
            {
                ScopeDiagnostics.ReportUnobserved(Name, failure);
            }
        }
    }
}
