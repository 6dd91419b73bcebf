using System.Collections.ObjectModel;

namespace AsyncScopes;

/// <summary>What <see cref="TaskScope"/>, <see cref="Deadline"/>, <see cref="WorkQueue{T}"/> and <see cref="AsyncPool{T}"/> share about
/// timeouts and cancelling: the range a timeout may take, a one-shot timer, and a cancellation that catches what the
/// token's callbacks throw.</summary>
internal static class Cancellation
{
    /// <summary>The longest timeout a timer takes: <see cref="uint.MaxValue"/> - 1 milliseconds, about 49.7 days.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>Throws unless <paramref name="timeout"/> is <see cref="TimeSpan.Zero"/> (when
    /// <paramref name="zeroAllowed"/>), positive up to
    /// <see cref="MaxTimeout"/>, or (when <paramref name="infiniteAllowed"/>) <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is out of that range; named <paramref name="paramName"/>.</exception>
    public static void ThrowIfTimeoutOutOfRange(TimeSpan timeout, string paramName, bool infiniteAllowed, bool zeroAllowed = true)
    {
        if (TimeoutOutOfRange(timeout, paramName, infiniteAllowed, zeroAllowed) is { } problem)
        {
            throw problem;
        }
    }

    /// <summary>The exception <see cref="ThrowIfTimeoutOutOfRange"/> throws for <paramref name="timeout"/>, or
    /// <see langword="null"/> when it is in range.</summary>
    public static ArgumentOutOfRangeException? TimeoutOutOfRange(TimeSpan timeout, string paramName, bool infiniteAllowed, bool zeroAllowed = true)
    {
        if (infiniteAllowed && timeout == Timeout.InfiniteTimeSpan)
        {
            return null;
        }

        if (timeout < TimeSpan.Zero || (!zeroAllowed && timeout == TimeSpan.Zero) || timeout > MaxTimeout)
        {
            return new ArgumentOutOfRangeException(
                paramName,
                timeout,
                $"{paramName} must be {(zeroAllowed ? "TimeSpan.Zero or positive" : "positive")}, at most about 49.7 days{(infiniteAllowed ? ", or Timeout.InfiniteTimeSpan" : string.Empty)}.");
        }

        return null;
    }

    /// <summary>Starts a timer that calls <paramref name="callback"/> once, after <paramref name="dueTime"/> on
    /// <paramref name="timeProvider"/>. The timer does not keep the creator's <see cref="ExecutionContext"/> (and its
    /// <see cref="AsyncLocal{T}"/> values) alive; the callback runs in the default context.</summary>
    public static ITimer StartTimer(TimeProvider timeProvider, TimerCallback callback, object state, TimeSpan dueTime)
    {
        bool suppress = !ExecutionContext.IsFlowSuppressed();
        if (suppress)
        {
            ExecutionContext.SuppressFlow();
        }

        try
        {
            return timeProvider.CreateTimer(callback, state, dueTime, Timeout.InfiniteTimeSpan);
        }
        finally
        {
            if (suppress)
            {
                ExecutionContext.RestoreFlow();
            }
        }
    }

    /// <summary>Cancels <paramref name="source"/>, running every callback registered on its token.</summary>
    /// <returns>What the callbacks threw, in the order they threw it, instead of throwing it on the thread that
    /// cancels (a timer's, or the caller of another token's <c>Cancel</c>); <see langword="null"/> when none threw.</returns>
    public static ReadOnlyCollection<Exception>? CancelCatchingCallbackFailures(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
            return null;
        }
        catch (AggregateException callbackFailures)
        {
            return callbackFailures.InnerExceptions;
        }
    }

    /// <summary>Cancels <paramref name="source"/> where nobody awaits the outcome (a timer's thread, a closed scope):
    /// what its callbacks throw goes to <see cref="ScopeDiagnostics.UnobservedFailure"/> under <paramref name="name"/>.</summary>
    public static void CancelReportingCallbackFailures(CancellationTokenSource source, string? name)
    {
        if (CancelCatchingCallbackFailures(source) is { } failures)
        {
            foreach (var failure in failures)
            {
                ScopeDiagnostics.ReportUnobserved(name, failure);
            }
        }
    }
}
