namespace AsyncScopes;

/// <summary>Options of a <see cref="TaskScope"/>; validated when the scope is created.</summary>
public sealed class TaskScopeOptions
{
    /// <summary>What the scope does when a child fails. Default: <see cref="TaskScopeFailureMode.CancelOnFirstFailure"/>.</summary>
    public TaskScopeFailureMode FailureMode { get; init; }

    /// <summary>The most children that run at once; further children wait, first-in first-out, for a slot.
    /// 0 (the default) means unbounded. Negative values are rejected.</summary>
    public int MaxConcurrency { get; init; }

    /// <summary>A deadline for the whole scope, measured from its creation on <see cref="TimeProvider"/>: when it
    /// fires, the scope's token is cancelled and, if no child failed, the join ends in a <see cref="TimeoutException"/>.
    /// <see langword="null"/> or <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: no deadline.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>When <see langword="true"/>, <see cref="Timeout"/> ends the scope quietly, as
    /// <see cref="TaskScope.Stop()"/> does (Trio's <c>move_on_after</c>): the join completes normally unless a child
    /// failed, and <c>RunAsync&lt;T&gt;</c> returns <see langword="default"/> if the body had not finished. Default:
    /// <see langword="false"/>, a <see cref="TimeoutException"/>.</summary>
    public bool TimeoutEndsQuietly { get; init; }

    /// <summary>The clock of <see cref="Timeout"/> and of the grace of <see cref="TaskScope.Stop(TimeSpan)"/>.
    /// Default: <see cref="System.TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>How long after the scope's token fired a child may still run before it is reported, once, through
    /// <see cref="ScopeDiagnostics.Straggler"/> (with its name and, with leak tracking on, where it was started). The
    /// scope still waits for it. <see langword="null"/> (the default) or <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>:
    /// no report, and nothing recorded per child.</summary>
    public TimeSpan? StragglerTimeout { get; init; }

    /// <summary>
    /// A limiter the scope shares with others, such as one <see cref="System.Threading.RateLimiting.ConcurrencyLimiter"/>
    /// for every request's scope (AnyIO's <c>CapacityLimiter</c>): each child waits for one permit before it runs and
    /// gives it back when it ends, whatever happens, before its task completes. <see langword="null"/> (the default):
    /// none. The scope does not own it: dispose it where it was made.
    /// </summary>
    /// <remarks>A child whose scope is cancelled while it waits is cancelled without running, and its request leaves
    /// the limiter's queue (the limiter's contract), so no permit is lost. A permit the limiter refuses (a full queue)
    /// fails the child with <see cref="PermitRejectedException"/>. With <see cref="MaxConcurrency"/> as well, a child
    /// takes its slot first, then its permit.</remarks>
    public System.Threading.RateLimiting.RateLimiter? Limiter { get; init; }

    /// <summary>A name for diagnostics: it appears in timeout messages and unobserved-failure events.</summary>
    public string? Name { get; init; }

    internal static readonly TaskScopeOptions Default = new();

    /// <summary>True for a scope that makes no span (leak tracking still lists it): one as long-lived as its host,
    /// whose span would hold every child's spans in one trace for the host's lifetime, and put the children that
    /// requests start in that trace rather than in their requests'.</summary>
    internal bool Untraced { get; init; }

    /// <summary>These options, for a scope that makes no span (<see cref="Untraced"/>).</summary>
    internal TaskScopeOptions WithoutSpan() => new()
    {
        FailureMode = FailureMode,
        MaxConcurrency = MaxConcurrency,
        Timeout = Timeout,
        TimeoutEndsQuietly = TimeoutEndsQuietly,
        TimeProvider = TimeProvider,
        StragglerTimeout = StragglerTimeout,
        Limiter = Limiter,
        Name = Name,
        Untraced = true,
    };

    internal void Validate()
    {
        if (FailureMode is not (TaskScopeFailureMode.CancelOnFirstFailure or TaskScopeFailureMode.WaitForAll))
        {
            throw new ArgumentOutOfRangeException(nameof(FailureMode), FailureMode, "Unknown TaskScopeFailureMode.");
        }

        if (MaxConcurrency < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrency), MaxConcurrency, "MaxConcurrency must be 0 (unbounded) or positive.");
        }

        if (Timeout is { } timeout)
        {
            Cancellation.ThrowIfTimeoutOutOfRange(timeout, nameof(Timeout), infiniteAllowed: true);
        }

        if (StragglerTimeout is { } stragglerTimeout)
        {
            Cancellation.ThrowIfTimeoutOutOfRange(stragglerTimeout, nameof(StragglerTimeout), infiniteAllowed: true);
        }

        if (TimeProvider is null)
        {
            throw new ArgumentException("TimeProvider must not be null.", nameof(TimeProvider));
        }
    }
}
