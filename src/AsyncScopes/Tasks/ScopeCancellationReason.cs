namespace AsyncScopes;

/// <summary>Why a <see cref="TaskScope"/> was asked to stop: the first request wins, and decides how the join ends.</summary>
public enum ScopeCancellationReason
{
    /// <summary>Nothing asked the scope to stop: its token has not fired.</summary>
    None,

    /// <summary>A child (or the <c>RunAsync</c> body) failed; the join faults with the failures.</summary>
    Failure,

    /// <summary><see cref="TaskScope.Cancel"/>: the join ends cancelled, unless a child failed.</summary>
    Cancel,

    /// <summary><see cref="TaskScope.Stop()"/> or <see cref="TaskScope.Stop(TimeSpan)"/>: the join completes normally,
    /// unless a child failed or the outer token was cancelled.</summary>
    Stop,

    /// <summary>The outer token given to the constructor or to <c>RunAsync</c>: the join ends cancelled, unless a child failed.</summary>
    Outer,

    /// <summary><see cref="TaskScopeOptions.Timeout"/>: the join throws a <see cref="TimeoutException"/>, or completes
    /// normally with <see cref="TaskScopeOptions.TimeoutEndsQuietly"/>, unless a child failed.</summary>
    Timeout,

    /// <summary><see cref="TaskScope.DisposeAsync"/> before the join completed: abandonment.</summary>
    Disposed,
}
