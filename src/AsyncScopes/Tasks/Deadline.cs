using System.Diagnostics.CodeAnalysis;

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
/// <para>The work must observe its token: work that ignores cancellation is waited for until it ends.</para>
/// </remarks>
public static class Deadline
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
        using var scope = new DeadlineScope(timeout, cancellationToken, timeProvider);
        try
        {
            return await work(scope.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (scope.TimedOut)
        {
            throw scope.CreateTimeoutException(e);
        }
    }

    private static async Task RunCoreAsync(
        TimeSpan timeout, Func<CancellationToken, Task> work, CancellationToken cancellationToken, TimeProvider timeProvider)
    {
        using var scope = new DeadlineScope(timeout, cancellationToken, timeProvider);
        try
        {
            await work(scope.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (scope.TimedOut)
        {
            throw scope.CreateTimeoutException(e);
        }
    }

    private static async Task<(bool Completed, T? Result)> TryRunCoreAsync<T>(
        TimeSpan timeout, Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken, TimeProvider timeProvider)
    {
        using var scope = new DeadlineScope(timeout, cancellationToken, timeProvider);
        try
        {
            return (true, await work(scope.Token).ConfigureAwait(false));
        }
        catch (Exception) when (scope.TimedOut)
        {
            return (false, default);
        }
    }

    /// <summary>The token source of one deadline, linked to the caller's token.</summary>
    [SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "It is IDisposable; every use is a using declaration.")]
    private readonly struct DeadlineScope : IDisposable
    {
        private readonly CancellationTokenSource _source;
        private readonly CancellationTokenRegistration _outer;
        private readonly CancellationToken _outerToken;
        private readonly TimeSpan _timeout;

        public DeadlineScope(TimeSpan timeout, CancellationToken outerToken, TimeProvider timeProvider)
        {
            _timeout = timeout;
            _outerToken = outerToken;

            // The source is created on the caller's TimeProvider so that the deadline runs on it (FakeTimeProvider
            // in tests); a linked source would always use the system clock.
            _source = new CancellationTokenSource(timeout, timeProvider);
            _outer = outerToken.CanBeCanceled
                ? outerToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _source)
                : default;
        }

        public CancellationToken Token => _source.Token;

        // The deadline, not the caller, cut the work short.
        public bool TimedOut => _source.IsCancellationRequested && !_outerToken.IsCancellationRequested;

        public TimeoutException CreateTimeoutException(Exception inner) =>
            new($"The operation did not complete within its deadline of {_timeout}.", inner);

        public void Dispose()
        {
            _outer.Dispose();
            _source.Dispose();
        }
    }
}
