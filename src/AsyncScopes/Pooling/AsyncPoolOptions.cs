namespace AsyncScopes;

/// <summary>Options of an <see cref="AsyncPool{T}"/>; validated and copied when the pool is created.</summary>
/// <typeparam name="T">The pooled item type.</typeparam>
/// <remarks>Settable, as options of the .NET options pattern are (<c>Configure</c>, <c>Bind</c>, the configuration
/// binding source generator): the pool keeps a copy made when it is created, so changing an instance afterwards
/// changes no pool.</remarks>
public sealed class AsyncPoolOptions<T>
{
    /// <summary>The most items that exist at once, leased, idle or being created. Default 16; at least 1.</summary>
    public int MaxSize { get; set; } = 16;

    /// <summary>Idle items kept warm: the pool creates items in the background to keep at least this many idle,
    /// within <see cref="MaxSize"/>. A failing factory there is retried with backoff (1 s doubling up to 30 s) and
    /// reported through <see cref="ScopeDiagnostics.UnobservedFailure"/>, never thrown. Default 0.</summary>
    public int MinIdle { get; set; }

    /// <summary>How long a rent may wait for items to come back, in all, before <see cref="TimeoutException"/>
    /// (time spent in the factory or in validation is not counted); <see langword="null"/> (the default) or
    /// <see cref="Timeout.InfiniteTimeSpan"/>: until cancelled.</summary>
    public TimeSpan? AcquireTimeout { get; set; }

    /// <summary>An item idle for longer than this is destroyed, without going below <see cref="MinIdle"/>;
    /// <see langword="null"/> (the default) or <see cref="Timeout.InfiniteTimeSpan"/>: idle items are kept.</summary>
    public TimeSpan? IdleTimeout { get; set; }

    /// <summary>An item older than this is destroyed when it is returned or found idle, never while leased;
    /// <see langword="null"/> (the default) or <see cref="Timeout.InfiniteTimeSpan"/>: no limit.</summary>
    public TimeSpan? MaxLifetime { get; set; }

    /// <summary>Checks an idle item before it is handed to a renter; <see langword="false"/> or an exception destroys it
    /// and the renter gets another. Items just created, or handed straight from one lease to the next waiter, are not
    /// checked.</summary>
    public Func<T, CancellationToken, ValueTask<bool>>? Validate { get; set; }

    /// <summary>Runs on every returned item that is kept; an exception destroys the item (and is reported through
    /// <see cref="ScopeDiagnostics.UnobservedFailure"/>).</summary>
    public Func<T, ValueTask>? Reset { get; set; }

    /// <summary>Destroys an item. Default: <see cref="IAsyncDisposable.DisposeAsync"/>, else
    /// <see cref="IDisposable.Dispose"/>, else nothing. An exception is reported through
    /// <see cref="ScopeDiagnostics.UnobservedFailure"/>, never thrown to a renter.</summary>
    public Func<T, ValueTask>? Destroy { get; set; }

    /// <summary>Decides, when a body given to <c>UseAsync</c> throws, whether its item is destroyed
    /// (<see langword="true"/>) or returned (<see langword="false"/>). <see langword="null"/> (the default): destroyed
    /// on every failure.</summary>
    public Func<Exception, bool>? DiscardOn { get; set; }

    /// <summary>How long <see cref="AsyncPool{T}.DisposeAsync"/> waits for leased items to come back and for the
    /// destructions it started to end, all together; what is still out or still being destroyed then is reported.
    /// Default 30 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock of every timeout and lifetime. Default: <see cref="System.TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>A name for diagnostics: in timeout messages, metrics tags and leak reports.</summary>
    public string? Name { get; set; }

    /// <summary>A copy of these options, which the pool keeps: changing the options afterwards changes nothing.</summary>
    internal AsyncPoolOptions<T> Copy() => new()
    {
        MaxSize = MaxSize,
        MinIdle = MinIdle,
        AcquireTimeout = AcquireTimeout,
        IdleTimeout = IdleTimeout,
        MaxLifetime = MaxLifetime,
        Validate = Validate,
        Reset = Reset,
        Destroy = Destroy,
        DiscardOn = DiscardOn,
        DrainTimeout = DrainTimeout,
        TimeProvider = TimeProvider,
        Name = Name,
    };

    /// <summary>Throws the first of <see cref="FindProblems"/>.</summary>
    internal void ThrowIfInvalid()
    {
        if (FindProblems().FirstOrDefault() is { } problem)
        {
            throw problem;
        }
    }

    /// <summary>Every setting out of range, each as the exception the pool's constructor would throw for it.</summary>
    internal IEnumerable<ArgumentException> FindProblems()
    {
        if (MaxSize < 1)
        {
            yield return new ArgumentOutOfRangeException(nameof(MaxSize), MaxSize, "MaxSize must be at least 1.");
        }

        if (MinIdle < 0 || MinIdle > MaxSize)
        {
            yield return new ArgumentOutOfRangeException(nameof(MinIdle), MinIdle, "MinIdle must be between 0 and MaxSize.");
        }

        ArgumentException?[] timeouts =
        [
            OutOfRange(AcquireTimeout, nameof(AcquireTimeout)),
            OutOfRange(IdleTimeout, nameof(IdleTimeout)),
            OutOfRange(MaxLifetime, nameof(MaxLifetime)),
            OutOfRange(DrainTimeout, nameof(DrainTimeout), allowZero: true),
        ];
        foreach (ArgumentException? problem in timeouts)
        {
            if (problem is not null)
            {
                yield return problem;
            }
        }

        if (TimeProvider is null)
        {
            yield return new ArgumentException("TimeProvider must not be null.", nameof(TimeProvider));
        }
    }

    private static ArgumentOutOfRangeException? OutOfRange(TimeSpan? value, string name, bool allowZero = false) =>
        value is { } time ? Cancellation.TimeoutOutOfRange(time, name, infiniteAllowed: true, zeroAllowed: allowZero) : null;
}
