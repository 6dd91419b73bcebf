using System.Collections.ObjectModel;
using System.Runtime.ExceptionServices;

namespace AsyncScopes;

/// <summary>
/// Runs work under a deadline that cancels the work <em>and waits for it</em>: unlike
/// <see cref="Task.WaitAsync(TimeSpan)"/>, nothing of the work keeps running after the call returns. This is
/// Python's <c>asyncio.timeout</c>.
/// </summary>
/// <remarks>
/// <para>Timeouts: <see cref="TimeSpan.Zero"/> runs the work with an already-cancelled token;
/// <see cref="Timeout.InfiniteTimeSpan"/> sets no deadline; any other negative value, or one too large for a timer,
/// throws <see cref="ArgumentOutOfRangeException"/>.</para>
/// <para>Outcome: the work's result when it succeeded, even if the deadline fired meanwhile. When the work ended with
/// an exception after the deadline fired and the outer token was not cancelled: <see cref="TimeoutException"/> with
/// the work's exception as <see cref="Exception.InnerException"/>. When the outer token was cancelled: the work's
/// exception as it is (normally its <see cref="OperationCanceledException"/>). Otherwise the work's exception.</para>
/// <para>Callbacks registered on the work's token that throw when the deadline or the outer token cancels it: as with
/// <see cref="TaskScope.Token"/>, their exceptions are failures of the call, never thrown on the thread that cancels
/// (the deadline's timer, or the caller of the outer token's <c>Cancel</c>). Once the work has ended and every callback
/// has run, the returned task faults with an <see cref="AggregateException"/> (which <c>await</c> throws as it is):
/// the callbacks' exceptions in the order they were thrown, followed by the exception the call would have thrown
/// without them, if any. A result of the work is then dropped, and <c>TryRunAsync</c> throws instead of returning
/// <c>(false, default)</c>.</para>
/// <para>The work must observe its token: work that ignores cancellation is waited for until it ends.</para>
/// </remarks>
public static partial class Deadline
{
    /// <summary>Runs <paramref name="work"/> with a token cancelled after <paramref name="timeout"/>, and waits for it.</summary>
    /// <typeparam name="T">The type of the work's result.</typeparam>
    /// <param name="timeout">The time allowed, measured on <paramref name="timeProvider"/>.</param>
    /// <param name="work">The work; it receives a token cancelled by the deadline or by <paramref name="cancellationToken"/>.</param>
    /// <param name="cancellationToken">Cancels the work from outside; its cancellation propagates as the work's
    /// <see cref="OperationCanceledException"/>, never as a <see cref="TimeoutException"/>.</param>
    /// <param name="timeProvider">The clock of the deadline; <see cref="TimeProvider.System"/> when null.</param>
    /// <returns>The work's result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than
    /// <see cref="Timeout.InfiniteTimeSpan"/>) or too large.</exception>
    /// <exception cref="TimeoutException">The deadline fired and the work then failed; the work's exception is inside.</exception>
    /// <exception cref="AggregateException">Callbacks registered on the work's token threw when it was cancelled: their
    /// exceptions, then the exception the call would have thrown without them, if any (see the remarks of
    /// <see cref="Deadline"/>).</exception>
    public static Task<T> RunAsync<T>(
        TimeSpan timeout,
        Func<CancellationToken, Task<T>> work,
        CancellationToken cancellationToken = default,
        TimeProvider? timeProvider = null)
    {
        Validate(timeout, work);
        return RunCoreAsync(timeout, work, cancellationToken, timeProvider ?? TimeProvider.System);
    }

    /// <summary>Runs <paramref name="work"/> with a token cancelled after <paramref name="timeout"/>, and waits for it.</summary>
    /// <param name="timeout">The time allowed, measured on <paramref name="timeProvider"/>.</param>
    /// <param name="work">The work; it receives a token cancelled by the deadline or by <paramref name="cancellationToken"/>.</param>
    /// <param name="cancellationToken">Cancels the work from outside; its cancellation propagates as the work's
    /// <see cref="OperationCanceledException"/>, never as a <see cref="TimeoutException"/>.</param>
    /// <param name="timeProvider">The clock of the deadline; <see cref="TimeProvider.System"/> when null.</param>
    /// <returns>A task that completes when the work has ended.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than
    /// <see cref="Timeout.InfiniteTimeSpan"/>) or too large.</exception>
    /// <exception cref="TimeoutException">The deadline fired and the work then failed; the work's exception is inside.</exception>
    /// <exception cref="AggregateException">Callbacks registered on the work's token threw when it was cancelled: their
    /// exceptions, then the exception the call would have thrown without them, if any (see the remarks of
    /// <see cref="Deadline"/>).</exception>
    public static Task RunAsync(
        TimeSpan timeout,
        Func<CancellationToken, Task> work,
        CancellationToken cancellationToken = default,
        TimeProvider? timeProvider = null)
    {
        Validate(timeout, work);
        return RunCoreAsync(timeout, work, cancellationToken, timeProvider ?? TimeProvider.System);
    }

    /// <summary>
    /// Runs <paramref name="work"/> like <see cref="RunAsync{T}(TimeSpan, Func{CancellationToken, Task{T}}, CancellationToken, TimeProvider?)"/>,
    /// but reports a deadline that cut the work short as <c>(false, default)</c> instead of throwing.
    /// </summary>
    /// <typeparam name="T">The type of the work's result.</typeparam>
    /// <param name="timeout">The time allowed, measured on <paramref name="timeProvider"/>.</param>
    /// <param name="work">The work; it receives a token cancelled by the deadline or by <paramref name="cancellationToken"/>.</param>
    /// <param name="cancellationToken">Cancels the work from outside; its cancellation propagates.</param>
    /// <param name="timeProvider">The clock of the deadline; <see cref="TimeProvider.System"/> when null.</param>
    /// <returns><c>(true, result)</c> when the work succeeded (even after the deadline fired); <c>(false, default)</c>
    /// when the deadline fired and the work then failed while the outer token was not cancelled.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than
    /// <see cref="Timeout.InfiniteTimeSpan"/>) or too large.</exception>
    /// <exception cref="AggregateException">Callbacks registered on the work's token threw when it was cancelled: their
    /// exceptions, then the exception RunAsync would have thrown without them, if any (see the remarks of
    /// <see cref="Deadline"/>).</exception>
    /// <remarks>A failure of the work before the deadline fired, or an outer cancellation, propagates as it is.</remarks>
    public static Task<(bool Completed, T? Result)> TryRunAsync<T>(
        TimeSpan timeout,
        Func<CancellationToken, Task<T>> work,
        CancellationToken cancellationToken = default,
        TimeProvider? timeProvider = null)
    {
        Validate(timeout, work);
        return TryRunCoreAsync(timeout, work, cancellationToken, timeProvider ?? TimeProvider.System);
    }

    private static void Validate(TimeSpan timeout, Delegate work)
    {
        ArgumentNullException.ThrowIfNull(work);
        Cancellation.ThrowIfTimeoutOutOfRange(timeout, nameof(timeout), infiniteAllowed: true);
    }

    private static async Task<T> RunCoreAsync<T>(
        TimeSpan timeout, Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken, TimeProvider timeProvider)
    {
        var deadline = new DeadlineSource(timeout, cancellationToken, timeProvider);
        T result = default!;
        Exception? failure = null;
        try
        {
            result = await work(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }

        if (await deadline.EndAsync(failure, timeout, cancellationToken).ConfigureAwait(false) is { } outcome)
        {
            ExceptionDispatchInfo.Throw(outcome);
        }

        return result;
    }

    private static async Task RunCoreAsync(
        TimeSpan timeout, Func<CancellationToken, Task> work, CancellationToken cancellationToken, TimeProvider timeProvider)
    {
        var deadline = new DeadlineSource(timeout, cancellationToken, timeProvider);
        Exception? failure = null;
        try
        {
            await work(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }

        if (await deadline.EndAsync(failure, timeout, cancellationToken).ConfigureAwait(false) is { } outcome)
        {
            ExceptionDispatchInfo.Throw(outcome);
        }
    }

    private static async Task<(bool Completed, T? Result)> TryRunCoreAsync<T>(
        TimeSpan timeout, Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken, TimeProvider timeProvider)
    {
        var deadline = new DeadlineSource(timeout, cancellationToken, timeProvider);
        T result = default!;
        Exception? failure = null;
        try
        {
            result = await work(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }

        Exception? outcome = await deadline.EndAsync(failure, timeout, cancellationToken).ConfigureAwait(false);
        if (deadline.CutShort)
        {
            return (false, default);
        }

        if (outcome is not null)
        {
            ExceptionDispatchInfo.Throw(outcome);
        }

        return (true, result);
    }

    /// <summary>
    /// The token source of one deadline. Its own timer, or the caller's token, cancels it at most once and never
    /// after the work ended; what the callbacks registered on its token throw then is kept for the outcome instead of
    /// being thrown on the thread that cancels. The work's end waits for a cancellation still running its callbacks.
    /// </summary>
    private sealed class DeadlineSource : CancellationTokenSource
    {
        private const int Armed = 0;        // neither cancelled nor ended
        private const int Cancelling = 1;   // running the token's callbacks
        private const int Cancelled = 2;
        private const int Ended = 3;        // the work ended first: nothing cancels any more
        private const int EndWaiting = 4;   // the work ended while the callbacks ran: the end waits for them

        private readonly CancellationTokenRegistration _outerRegistration;
        private readonly ITimer? _timer;
        private int _state;
        private CancellationRecord? _record;

        public DeadlineSource(TimeSpan timeout, CancellationToken outerToken, TimeProvider timeProvider)
        {
            if (timeout == TimeSpan.Zero)
            {
                Cancel(); // nothing is registered on the token yet, so nothing can throw
                _state = Cancelled;
            }
            else if (timeout != Timeout.InfiniteTimeSpan)
            {
                // The deadline's own timer on the caller's TimeProvider (FakeTimeProvider in tests), rather than the
                // source's: the source's timer would throw the callbacks' exceptions on the timer's thread.
                _timer = Cancellation.StartTimer(timeProvider, static state => ((DeadlineSource)state!).CancelOnce(), this, timeout);
            }

            _outerRegistration = outerToken.CanBeCanceled
                ? outerToken.UnsafeRegister(static state => ((DeadlineSource)state!).CancelOnce(), this)
                : default;
        }

        // Set by EndAsync: the deadline cut the work short (it failed after the deadline fired, the outer token was not
        // cancelled) and no callback threw.
        public bool CutShort { get; private set; }

        /// <summary>Ends the deadline once the work has ended: stops the timer, waits for a cancellation still running
        /// the token's callbacks, and releases the timer, the registration on the outer token and the source.</summary>
        /// <param name="failure">What the work threw; null when it succeeded.</param>
        /// <param name="timeout">The deadline's timeout, for the message of the <see cref="TimeoutException"/>; passed
        /// here rather than kept, as is <paramref name="outerToken"/>: two fields fewer in every deadline.</param>
        /// <param name="outerToken">The caller's token: when it was cancelled, the deadline did not cut the work short.</param>
        /// <returns>What the call throws: null when the work succeeded and no callback threw; the work's exception,
        /// inside a <see cref="TimeoutException"/> when the deadline cut the work short; and when callbacks threw, an
        /// <see cref="AggregateException"/> of their exceptions followed by that exception, if any.</returns>
        public ValueTask<Exception?> EndAsync(Exception? failure, TimeSpan timeout, CancellationToken outerToken)
        {
            // Read now: an outer cancellation after the work ended does not change what cut it short.
            bool timedOut = failure is not null && IsCancellationRequested && !outerToken.IsCancellationRequested;
            if (Interlocked.CompareExchange(ref _state, Ended, Armed) == Cancelling)
            {
                Record.CallbacksDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (Interlocked.CompareExchange(ref _state, EndWaiting, Cancelling) == Cancelling)
                {
                    return EndAfterCallbacksAsync(failure, timedOut, timeout);
                }
            }

            return new ValueTask<Exception?>(End(failure, timedOut, timeout));
        }

        // Made by whichever of the canceller and the end needs it first (both may, at once): the common deadline, which
        // nothing cancels while its work runs and whose callbacks do not throw, has none.
        private CancellationRecord Record
        {
            get
            {
                if (_record is null)
                {
                    Interlocked.CompareExchange(ref _record, new CancellationRecord(), null);
                }

                return _record;
            }
        }

        // The timer's and the outer token's callback: the first one cancels, unless the work already ended.
        private void CancelOnce()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelling, Armed) != Armed)
            {
                return;
            }

            if (Cancellation.CancelCatchingCallbackFailures(this) is { } failures)
            {
                Record.CallbackFailures = failures;
            }

            if (Interlocked.Exchange(ref _state, Cancelled) == EndWaiting)
            {
                _record!.CallbacksDone!.SetResult();
            }
        }

        private async ValueTask<Exception?> EndAfterCallbacksAsync(Exception? failure, bool timedOut, TimeSpan timeout)
        {
            await _record!.CallbacksDone!.Task.ConfigureAwait(false);
            return End(failure, timedOut, timeout);
        }

        private Exception? End(Exception? failure, bool timedOut, TimeSpan timeout)
        {
            _timer?.Dispose();
            _outerRegistration.Dispose();
            Dispose();

            Exception? outcome = timedOut
                ? new TimeoutException($"The operation did not complete within its deadline of {timeout}.", failure)
                : failure;
            if (_record?.CallbackFailures is not { } callbackFailures)
            {
                CutShort = timedOut;
                return outcome;
            }

            return new AggregateException(
                "Callbacks registered on the work's token threw when it was cancelled.",
                outcome is null ? callbackFailures : [.. callbackFailures, outcome]);
        }

        /// <summary>What only a cancelled deadline needs, kept apart so that the common one is a field smaller.</summary>
        private sealed class CancellationRecord
        {
            /// <summary>What the token's callbacks threw; written by the canceller before it leaves <c>Cancelling</c>.</summary>
            public ReadOnlyCollection<Exception>? CallbackFailures;

            /// <summary>Set by the canceller when the work's end waits for it; written by the end before it enters
            /// <c>EndWaiting</c>.</summary>
            public TaskCompletionSource? CallbacksDone;
        }
    }
}
