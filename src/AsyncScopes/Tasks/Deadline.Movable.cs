using System.Runtime.ExceptionServices;

namespace AsyncScopes;

public static partial class Deadline
{
    /// <summary>
    /// Runs <paramref name="work"/> under a deadline it can move, and waits for it: an idle timeout that the work pushes
    /// forward with every frame it receives (<see cref="MovableDeadline.Reschedule"/>, <see cref="MovableDeadline.Extend"/>).
    /// </summary>
    /// <typeparam name="T">The type of the work's result.</typeparam>
    /// <param name="timeout">The first deadline, from now on <paramref name="timeProvider"/>;
    /// <see cref="Timeout.InfiniteTimeSpan"/> for none until the work sets one with <see cref="MovableDeadline.Reschedule"/>
    /// (it is then at <see cref="DateTimeOffset.MaxValue"/>, which <see cref="MovableDeadline.Extend"/> cannot pass).</param>
    /// <param name="work">The work; it receives its deadline and the deadline's token (cancelled by the deadline or by
    /// <paramref name="cancellationToken"/>).</param>
    /// <param name="cancellationToken">Cancels the work from outside; its cancellation propagates as the work's
    /// <see cref="OperationCanceledException"/>, never as a <see cref="TimeoutException"/>.</param>
    /// <param name="timeProvider">The clock of the deadline; <see cref="TimeProvider.System"/> when null.</param>
    /// <returns>The work's result, even if the deadline fired meanwhile.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than
    /// <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    /// <exception cref="TimeoutException">The deadline fired and the work then failed, while the outer token was not
    /// cancelled; the work's exception is inside.</exception>
    /// <remarks>Named apart from <c>RunAsync</c> so that a call with a <see langword="null"/> work stays unambiguous.
    /// The outcome rules are those of <c>RunAsync</c>, but for callbacks on the token that throw:
    /// a movable deadline reports them through <see cref="ScopeDiagnostics.UnobservedFailure"/> (see
    /// <see cref="MovableDeadline"/>). The deadline is disposed when the work has ended.</remarks>
    public static async Task<T> RunMovableAsync<T>(
        TimeSpan timeout,
        Func<MovableDeadline, CancellationToken, Task<T>> work,
        CancellationToken cancellationToken = default,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        }

        using var deadline = timeout == Timeout.InfiniteTimeSpan
            ? MovableDeadline.At(DateTimeOffset.MaxValue, cancellationToken, timeProvider)
            : MovableDeadline.After(timeout, cancellationToken, timeProvider);
        try
        {
            return await work(deadline, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception failure) when (deadline.Expired && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The work did not complete before its deadline ({deadline.When:O}).", failure);
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> under a deadline it can move, and waits for it, with the rules of
    /// <see cref="RunMovableAsync{T}(TimeSpan, Func{MovableDeadline, CancellationToken, Task{T}}, CancellationToken, TimeProvider?)"/>.
    /// </summary>
    /// <param name="timeout">The first deadline, from now; <see cref="Timeout.InfiniteTimeSpan"/> for none until the work sets one.</param>
    /// <param name="work">The work; it receives its deadline and the deadline's token.</param>
    /// <param name="cancellationToken">Cancels the work from outside.</param>
    /// <param name="timeProvider">The clock of the deadline; <see cref="TimeProvider.System"/> when null.</param>
    /// <returns>A task that completes when the work has ended.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    /// <exception cref="TimeoutException">The deadline fired and the work then failed; the work's exception is inside.</exception>
    public static Task RunMovableAsync(
        TimeSpan timeout,
        Func<MovableDeadline, CancellationToken, Task> work,
        CancellationToken cancellationToken = default,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(work);
        return RunMovableAsync<bool>(
            timeout,
            async (deadline, token) =>
            {
                await work(deadline, token).ConfigureAwait(false);
                return true;
            },
            cancellationToken,
            timeProvider);
    }
}
