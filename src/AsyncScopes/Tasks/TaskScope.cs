using System.Diagnostics;
using System.Threading.RateLimiting;

namespace AsyncScopes;

/// <summary>
/// Structured concurrency: a scope that owns the tasks it starts, so that no task outlives the scope and no failure
/// is lost. Python's <c>TaskGroup</c>, with an explicit join.
/// </summary>
/// <remarks>
/// <para><see cref="Token"/> is cancelled by the first failure (in <see cref="TaskScopeFailureMode.CancelOnFirstFailure"/>),
/// by <see cref="Cancel"/>, by <see cref="Stop()"/> (or when the grace of <see cref="Stop(TimeSpan)"/> ends), by the
/// outer token, by <see cref="TaskScopeOptions.Timeout"/>, or by disposal before the join completed;
/// <see cref="CancellationReason"/> says which came first.</para>
/// <para>A child that ends with an <see cref="OperationCanceledException"/> while <see cref="Token"/> is cancelled is
/// <em>cancelled</em>, not failed. Any other exception, an <see cref="OperationCanceledException"/> from an
/// unrelated token included (an <c>HttpClient</c> timeout), is a failure.</para>
/// <para>Two forms: <see cref="RunAsync(Func{TaskScope, Task}, CancellationToken, TaskScopeOptions?)"/>, or
/// <c>await using</c> with <see cref="JoinAsync"/> as the body's last statement. Disposal without a completed join
/// is abandonment: the children are cancelled and awaited, and failures nobody observed go to
/// <see cref="ScopeDiagnostics.UnobservedFailure"/>.</para>
/// </remarks>
[DebuggerDisplay("TaskScope {_name}, cancelled = {Token.IsCancellationRequested}")]
public sealed partial class TaskScope : IAsyncDisposable
{
    // _counts: the children ever started (low 32 bits, wrapping) and two flags, written by whoever starts children.
    // _finished: the children that finished (or never ran), on a cache line of its own, written by the children. The
    // scope closes, exactly once, when it is joining and the two counts are equal.
    private const long StartedMask = 0xFFFF_FFFF;
    private const long JoiningFlag = 1L << 32;
    private const long ClosedFlag = 1L << 33;

    private static readonly KeyValuePair<string, object?> KindTag = new(ScopeMetrics.KindTag, "TaskScope");

    // One tag per reason, made once: recording the reason allocates nothing.
    private static readonly KeyValuePair<string, object?>[] ReasonTags =
        [.. Enum.GetValues<ScopeCancellationReason>().Select(reason => new KeyValuePair<string, object?>(ScopeMetrics.CancellationReasonTag, reason.ToString()))];
    private static readonly TaskScopeOptions RaceOptions = new() { FailureMode = TaskScopeFailureMode.WaitForAll, Name = "TaskScope.RaceAsync" };

    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _source;
    private readonly CancellationToken _outerToken;
    private readonly CancellationTokenRegistration _outerRegistration;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskScopeFailureMode _failureMode;
    private readonly int _maxConcurrency;
    private readonly ITimer? _timer;
    private readonly string? _name;
    private readonly TaskScopeOptions _options; // immutable: read for what is rarely needed (the timeout's message, Stop(grace)'s clock)
    private readonly ScopeObservation? _observation; // leak tracking and tracing: null unless one of them is on

    private Queue<IChild>? _waiting;
    private List<Exception>? _failures;
    private readonly FinishedCounter _finished = new();
    private long _counts;
    private int _running; // holding a slot; bounded scopes only, under the lock
    private volatile bool _joinCalled;
    private bool _disposalReported;
    private int _cancelReason; // a ScopeCancellationReason: the first request to stop or cancel
    private StopState? _stop; // made when Stopping is first read or Stop(grace) is called: nothing for scopes that never stop so
    private TimeoutException? _timeoutError; // the join's own exception when the timeout ended the scope

    /// <summary>Creates a scope with the default options.</summary>
    /// <param name="cancellationToken">Cancels the scope from outside: its cancellation cancels <see cref="Token"/>.</param>
    public TaskScope(CancellationToken cancellationToken = default)
        : this(null, cancellationToken)
    {
    }

    /// <summary>Creates a scope.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults. The timeout, if any, starts now.</param>
    /// <param name="cancellationToken">Cancels the scope from outside: its cancellation cancels <see cref="Token"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException"><see cref="TaskScopeOptions.TimeProvider"/> is null.</exception>
    public TaskScope(TaskScopeOptions? options, CancellationToken cancellationToken = default)
        : this(options, tracked: true, cancellationToken)
    {
    }

    // An untracked scope is part of another tracked object (a work queue's workers): it is not listed on its own, nor
    // traced.
    internal TaskScope(TaskScopeOptions? options, bool tracked, CancellationToken cancellationToken)
    {
        options ??= TaskScopeOptions.Default;
        options.Validate();
        _failureMode = options.FailureMode;
        _maxConcurrency = options.MaxConcurrency;
        _name = options.Name;
        _options = options;
        _source = new CancellationTokenSource();
        if (options.StragglerTimeout is { } stragglerTimeout && stragglerTimeout != Timeout.InfiniteTimeSpan)
        {
            _stop = new StopState { Stragglers = new StragglerWatch(stragglerTimeout, options.TimeProvider) };
        }

        _observation = tracked ? ScopeObservation.StartIfObserved(ScopeTracker.StartIfTracking("TaskScope", _name), _name, traced: !options.Untraced) : null;
        ScopeMetrics.OpenScopes.Add(1, KindTag);
        _source.Token.UnsafeRegister(static state => ((TaskScope)state!).OnCancelled(), this);
        if (options.Timeout is { } timeout && timeout != Timeout.InfiniteTimeSpan)
        {
            if (timeout == TimeSpan.Zero)
            {
                RequestCancel(ScopeCancellationReason.Timeout);
            }
            else
            {
                // The scope's own timer rather than a CancellationTokenSource's: the cancellation then goes through
                // RequestCancel, where callbacks on Token that throw become failures of the scope instead of exceptions
                // on the timer's thread.
                _timer = Cancellation.StartTimer(
                    options.TimeProvider, static state => ((TaskScope)state!).RequestCancel(ScopeCancellationReason.Timeout), this, timeout);
            }
        }

        _outerToken = cancellationToken;
        if (cancellationToken.CanBeCanceled)
        {
            _outerRegistration = cancellationToken.UnsafeRegister(
                static state => ((TaskScope)state!).RequestCancel(ScopeCancellationReason.Outer), this);
        }
    }

    /// <summary>The token every child receives; cancelled when the scope is cancelled for any reason.</summary>
    /// <remarks>A callback registered on it that throws is a failure of the scope, whatever cancelled it: the
    /// exception never reaches the caller of <see cref="Cancel"/>, the outer token's <c>Cancel</c>, or the timer of
    /// <see cref="TaskScopeOptions.Timeout"/>.</remarks>
    public CancellationToken Token => _source.Token;

    /// <summary>
    /// The first phase of a two-phase stop: cancelled at once by <see cref="Stop(TimeSpan)"/>, so that children finish
    /// the unit of work they are in (drain a queue, answer a close frame) before <see cref="Token"/> fires; and
    /// cancelled, at the latest, when <see cref="Token"/> is.
    /// </summary>
    /// <remarks>Costs nothing until it is first read. A child (or the body) that ends with an
    /// <see cref="OperationCanceledException"/> whose token is this one is cancelled, not failed; one for a token linked
    /// to it is a failure, as for any other token, unless <see cref="Token"/> is cancelled by then. A callback
    /// registered on it before it fires and that throws is a failure of the scope.</remarks>
    public CancellationToken Stopping
    {
        get
        {
            if (Volatile.Read(ref _stop) is { } stop)
            {
                return stop.Stopping.Token;
            }

            if (_source.IsCancellationRequested)
            {
                return _source.Token;
            }

            stop = PublishStopState();
            if (CancellationReason != ScopeCancellationReason.None)
            {
                // A stop or a cancellation came before it was published and found nothing to cancel: cancel it here,
                // as a member of the scope (its callbacks may throw, and their failures are the scope's).
                CancelStoppingAsMember();
            }

            return stop.Stopping.Token;
        }
    }

    /// <summary>Why the scope was asked to stop, by the first request (<see cref="ScopeCancellationReason.None"/> while
    /// nothing has). <see cref="Stop(TimeSpan)"/> counts when it is called, before <see cref="Token"/> fires.</summary>
    public ScopeCancellationReason CancellationReason => (ScopeCancellationReason)Volatile.Read(ref _cancelReason);

    /// <summary>
    /// Starts <paramref name="work"/> as a child of the scope, on the thread pool, with the caller's
    /// <see cref="ExecutionContext"/>. Never blocks and never throws what the work throws.
    /// </summary>
    /// <param name="work">The child; it receives <see cref="Token"/>.</param>
    /// <returns>The child's own outcome. A failure (a synchronous throw included) faults it and is also a failure of
    /// the scope, recorded before the task faults (in <see cref="TaskScopeFailureMode.CancelOnFirstFailure"/>,
    /// <see cref="Token"/> is cancelled by then); cancellation while <see cref="Token"/> is cancelled cancels it. When
    /// the scope is already cancelled, a cancelled task, and the work does not run.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed). Starting while the join
    /// is in progress is allowed: the join waits for that child too.</exception>
    /// <remarks>With <see cref="TaskScopeOptions.MaxConcurrency"/>, a child beyond the limit waits, first-in
    /// first-out, for a slot; a waiting child whose scope is cancelled is cancelled without running.</remarks>
    public Task Start(Func<CancellationToken, Task> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return StartCore<VoidResult>(work, null);
    }

    /// <summary>Starts a named child: <see cref="Start(Func{CancellationToken, Task})"/>, with a name that a straggler
    /// report gives (<see cref="TaskScopeOptions.StragglerTimeout"/>).</summary>
    /// <param name="work">The child; it receives <see cref="Token"/>.</param>
    /// <param name="name">The child's name in diagnostics: "connection 42", "send loop".</param>
    /// <returns>The child's own outcome, with the rules of <see cref="Start(Func{CancellationToken, Task})"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed).</exception>
    public Task Start(Func<CancellationToken, Task> work, string? name)
    {
        ArgumentNullException.ThrowIfNull(work);
        return StartCore<VoidResult>(work, name);
    }

    /// <summary>
    /// Starts <paramref name="work"/> as a child of the scope, on the thread pool, with the caller's
    /// <see cref="ExecutionContext"/>. Never blocks and never throws what the work throws.
    /// </summary>
    /// <typeparam name="T">The type of the child's result.</typeparam>
    /// <param name="work">The child; it receives <see cref="Token"/>.</param>
    /// <returns>The child's own outcome, with the rules of <see cref="Start(Func{CancellationToken, Task})"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed).</exception>
    public Task<T> Start<T>(Func<CancellationToken, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return StartCore<T>(work, null);
    }

    /// <summary>Starts a named child with a result: <see cref="Start{T}(Func{CancellationToken, Task{T}})"/>, with a
    /// name that a straggler report gives.</summary>
    /// <typeparam name="T">The type of the child's result.</typeparam>
    /// <param name="work">The child; it receives <see cref="Token"/>.</param>
    /// <param name="name">The child's name in diagnostics.</param>
    /// <returns>The child's own outcome, with the rules of <see cref="Start(Func{CancellationToken, Task})"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed).</exception>
    public Task<T> Start<T>(Func<CancellationToken, Task<T>> work, string? name)
    {
        ArgumentNullException.ThrowIfNull(work);
        return StartCore<T>(work, name);
    }

    /// <summary>Cancels <see cref="Token"/>. The scope still waits for its children when joined or disposed; the
    /// join then ends cancelled unless a child failed. Calling it again, or after the scope closed, does nothing.</summary>
    /// <remarks>After <see cref="Stop(TimeSpan)"/>, it ends the grace at once; the first request still decides how
    /// the join ends (<see cref="CancellationReason"/>).</remarks>
    public void Cancel() => RequestCancel(ScopeCancellationReason.Cancel);

    /// <summary>
    /// Stops the scope on purpose: cancels <see cref="Token"/> (and <see cref="Stopping"/>), and the join then
    /// completes <em>normally</em> unless a child failed (Trio's rule: a cancellation ends quietly at the scope that
    /// asked for it). A cancellation of the outer token still ends the join cancelled. <c>RunAsync&lt;T&gt;</c> returns
    /// the body's result if the body finished, else <see langword="default"/>.
    /// </summary>
    /// <remarks>The first request decides how the join ends: after <see cref="Cancel"/>, the timeout or a failure,
    /// stopping changes nothing. Calling it again, or after the scope closed, does nothing.</remarks>
    public void Stop() => RequestCancel(ScopeCancellationReason.Stop);

    /// <summary>
    /// Stops the scope in two phases: <see cref="Stopping"/> fires at once, so that children finish what they are
    /// doing; <see cref="Token"/> fires when <paramref name="grace"/> has passed on the scope's
    /// <see cref="TaskScopeOptions.TimeProvider"/>, or at once on a failure, <see cref="Cancel"/>, <see cref="Stop()"/>,
    /// the outer token, the timeout or disposal. A child that finishes during the grace is not cancelled, and when
    /// every child returned and the scope was joined before the grace ended, <see cref="Token"/> never fires. The join
    /// completes as after <see cref="Stop()"/>.
    /// </summary>
    /// <param name="grace">How long children have after <see cref="Stopping"/>; <see cref="TimeSpan.Zero"/> is
    /// <see cref="Stop()"/>, <see cref="Timeout.InfiniteTimeSpan"/> waits for them without ever firing <see cref="Token"/>
    /// for the stop.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="grace"/> is negative (other than
    /// <see cref="Timeout.InfiniteTimeSpan"/>) or longer than about 49.7 days.</exception>
    /// <remarks>Nothing outlives the scope: the grace's timer is released when the scope closes. After another request
    /// to stop or cancel, or after the scope closed, it does nothing.</remarks>
    public void Stop(TimeSpan grace)
    {
        Cancellation.ThrowIfTimeoutOutOfRange(grace, nameof(grace), infiniteAllowed: true);
        if (grace == TimeSpan.Zero)
        {
            Stop();
            return;
        }

        // Counted as a member while it works, as RequestCancel is: the scope cannot close under it.
        if (_source.IsCancellationRequested || !TryAddActive())
        {
            return;
        }

        try
        {
            if (Interlocked.CompareExchange(ref _cancelReason, (int)ScopeCancellationReason.Stop, (int)ScopeCancellationReason.None) != (int)ScopeCancellationReason.None)
            {
                return; // another request came first
            }

            var stop = PublishStopState(); // made now if nobody read Stopping yet, so that it is cancelled below
            if (grace != Timeout.InfiniteTimeSpan)
            {
                Volatile.Write(ref stop.GraceTimer, Cancellation.StartTimer(
                    _options.TimeProvider, static state => ((TaskScope)state!).RequestCancel(ScopeCancellationReason.Stop), this, grace));
            }

            CancelStopping();
        }
        finally
        {
            if (MarkFinished(1))
            {
                FinishClose();
            }
        }
    }

    /// <summary>Waits for every child, including children started while waiting, and closes the scope.</summary>
    /// <returns>
    /// The same task on every call. It succeeds when no child failed and the scope was not cancelled, or was stopped
    /// (<see cref="Stop()"/>, <see cref="Stop(TimeSpan)"/>, a timeout with <see cref="TaskScopeOptions.TimeoutEndsQuietly"/>)
    /// while the outer token was not cancelled. With failures,
    /// it faults with <em>all</em> of them, the first one first (<c>await</c> rethrows the root cause,
    /// <see cref="Task.Exception"/> holds them all). With no failure but the timeout fired first (and not quietly): a
    /// <see cref="TimeoutException"/>. With no failure, cancelled from outside or by <see cref="Cancel"/> first:
    /// cancelled. <see cref="CancellationReason"/> names the first request.
    /// </returns>
    /// <remarks>Calling it before the scope closed makes its failures observed: they are not reported to
    /// <see cref="ScopeDiagnostics.UnobservedFailure"/>.</remarks>
    public Task JoinAsync()
    {
        if (!IsClosed)
        {
            _joinCalled = true;
        }

        if (BeginJoining())
        {
            FinishClose();
        }

        return _completion.Task;
    }

    /// <summary>
    /// Closes the scope. Before the join completed: cancels <see cref="Token"/>, waits for every child (their
    /// <c>finally</c> blocks have run when this returns), and reports each failure nobody observed through
    /// <see cref="ScopeDiagnostics.UnobservedFailure"/>. After the join completed: does nothing.
    /// </summary>
    /// <returns>A task that completes when no child is left running; it never faults.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_completion.Task.IsCompleted && Volatile.Read(ref _disposalReported))
        {
            return;
        }

        if (!_completion.Task.IsCompleted)
        {
            RequestCancel(ScopeCancellationReason.Disposed);
        }

        if (BeginJoining())
        {
            FinishClose();
        }

        await _completion.Task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

        List<Exception>? unobserved = null;
        lock (_lock)
        {
            if (!_disposalReported)
            {
                _disposalReported = true;
                if (!_joinCalled)
                {
                    unobserved = _failures;
                }
            }
        }

        if (unobserved is not null)
        {
            _ = _completion.Task.Exception; // reported here, so not again as an unobserved task exception
            foreach (var failure in unobserved)
            {
                ScopeDiagnostics.ReportUnobserved(_name, failure);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> as the first member of a new scope, then joins the scope.
    /// </summary>
    /// <param name="body">The body; it starts children on the scope it receives.</param>
    /// <param name="cancellationToken">Cancels the scope from outside.</param>
    /// <param name="options">The scope's options; <see langword="null"/> for the defaults.</param>
    /// <returns>
    /// A task that completes when the body and every child have finished. An <see cref="OperationCanceledException"/>
    /// from the body is cancellation when <see cref="Token"/> is cancelled, else a failure. When the body fails, the
    /// scope is cancelled, the children are awaited, and the task faults with the body's exception first, then the
    /// children's failures. When the body returns, the outcome is the join's.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the body does not run.</exception>
    /// <exception cref="ArgumentException"><see cref="TaskScopeOptions.TimeProvider"/> is null; the body does not run.</exception>
    public static Task RunAsync(Func<TaskScope, Task> body, CancellationToken cancellationToken = default, TaskScopeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        var scope = new TaskScope(options, cancellationToken);
        var outcome = new TaskCompletionSource<VoidResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = scope.RunBodyAsync(body, outcome);
        return outcome.Task;
    }

    /// <summary>
    /// Runs <paramref name="body"/> as the first member of a new scope, joins the scope, and returns the body's result.
    /// </summary>
    /// <typeparam name="T">The type of the result.</typeparam>
    /// <param name="body">The body; it starts children on the scope it receives.</param>
    /// <param name="cancellationToken">Cancels the scope from outside.</param>
    /// <param name="options">The scope's options; <see langword="null"/> for the defaults.</param>
    /// <returns>The body's result once every child finished, with the rules of
    /// <see cref="RunAsync(Func{TaskScope, Task}, CancellationToken, TaskScopeOptions?)"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the body does not run.</exception>
    /// <exception cref="ArgumentException"><see cref="TaskScopeOptions.TimeProvider"/> is null; the body does not run.</exception>
    public static Task<T> RunAsync<T>(Func<TaskScope, Task<T>> body, CancellationToken cancellationToken = default, TaskScopeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        var scope = new TaskScope(options, cancellationToken);
        var outcome = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = scope.RunBodyAsync(body, outcome);
        return outcome.Task;
    }

    /// <summary>
    /// Runs the contenders at once; the first to succeed wins, the others are cancelled and awaited.
    /// </summary>
    /// <typeparam name="T">The type of the result.</typeparam>
    /// <param name="contenders">The contenders; each receives a token cancelled once a winner is known.</param>
    /// <param name="cancellationToken">Cancels the race from outside.</param>
    /// <returns>
    /// The winner's result, once every loser has finished. Results of losers that also succeeded are disposed when
    /// they are <see cref="IAsyncDisposable"/> or <see cref="IDisposable"/>. When a contender won, the failures of the
    /// losers (before or after the win, their disposal's included) go to <see cref="ScopeDiagnostics.UnobservedFailure"/>. When every contender fails: faults
    /// with all the failures. Cancelled from outside before anyone won: cancelled once every contender has ended, unless a
    /// contender had failed: then it faults with those failures, which a cancellation never hides.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="contenders"/> or one of them is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="contenders"/> is empty.</exception>
    public static Task<T> RaceAsync<T>(IEnumerable<Func<CancellationToken, Task<T>>> contenders, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(contenders);
        var all = contenders.ToArray();
        if (all.Length == 0)
        {
            throw new ArgumentException("A race needs at least one contender.", nameof(contenders));
        }

        foreach (var contender in all)
        {
            ArgumentNullException.ThrowIfNull(contender, nameof(contenders));
        }

        return new Race<T>(all, cancellationToken).RunAsync();
    }

    private Task<T> StartCore<T>(Delegate work, string? name)
    {
        if (!TryAddActive())
        {
            throw new InvalidOperationException(
                $"The TaskScope{(_name is null ? string.Empty : " '" + _name + "'")} is closed: it was joined or disposed, so it cannot start children.");
        }

        if (_source.IsCancellationRequested)
        {
            if (MarkFinished(1))
            {
                FinishClose();
            }

            return Task.FromCanceled<T>(_source.Token);
        }

        var child = new Child<T>(this, work, ExecutionContext.Capture());
        _observation?.ChildStarted();
        var watch = Volatile.Read(ref _stop)?.Stragglers;
        watch?.Add(child, name);
        if (_maxConcurrency > 0)
        {
            lock (_lock)
            {
                // Checked under the lock that OnCancelled drains the waiting children with: none is left behind.
                if (_source.IsCancellationRequested)
                {
                    child.CancelWithoutRunning(_source.Token);
                }
                else if (_running >= _maxConcurrency)
                {
                    (_waiting ??= new Queue<IChild>()).Enqueue(child);
                    return child.Task;
                }
                else
                {
                    _running++;
                }
            }

            if (child.Task.IsCanceled)
            {
                watch?.Remove(child);
                _observation?.ChildrenCancelled(1);
                if (MarkFinished(1))
                {
                    FinishClose();
                }

                return child.Task;
            }
        }

        child.Schedule();
        return child.Task;
    }

    // Runs before the child's task faults, so that whoever awaits the child finds the failure recorded and, in
    // CancelOnFirstFailure, the scope cancelled; and before the child's slot is handed on, so that the children
    // waiting for it are cancelled without running.
    private void OnChildFailed(Exception failure)
    {
        _observation?.ChildFailed();
        lock (_lock)
        {
            (_failures ??= []).Add(failure);
        }

        if (_failureMode == TaskScopeFailureMode.CancelOnFirstFailure)
        {
            RequestCancel(ScopeCancellationReason.Failure);
        }
    }

    // Runs after the child's task completed, so that a completed join means completed child tasks.
    private void OnChildFinished(IChild child)
    {
        Volatile.Read(ref _stop)?.Stragglers?.Remove(child);
        if (ScopeMetrics.RunningChildren.Enabled)
        {
            ScopeMetrics.RunningChildren.Add(-1);
        }

        IChild? next = null;
        if (_maxConcurrency > 0)
        {
            lock (_lock)
            {
                _running--;
                Debug.Assert(_running >= 0, "More children finished than started.");

                // Once the token is cancelled, OnCancelled cancels the waiting children instead.
                if (_waiting is { Count: > 0 } && !_source.IsCancellationRequested)
                {
                    next = _waiting.Dequeue();
                    _running++;
                }
            }
        }

        next?.Schedule();

        // Last: the failure is recorded and the next child counted before this one can close the scope.
        if (MarkFinished(1))
        {
            FinishClose();
        }
    }

    private void RequestCancel(ScopeCancellationReason reason)
    {
        // The cancellation counts as a member of the scope while its callbacks run: children that end inside them
        // cannot close the scope before what the callbacks threw is recorded. A closed scope is never cancelled: its
        // outcome is set, and a callback failure then would have nowhere to go.
        if (_source.IsCancellationRequested || !TryAddActive())
        {
            return;
        }

        Interlocked.CompareExchange(ref _cancelReason, (int)reason, (int)ScopeCancellationReason.None);
        try
        {
            CancelStopping(); // Stopping fires before Token, so that Token's callbacks see it fired

            // Callbacks registered on Token that threw: failures of the scope like any other, never lost.
            if (Cancellation.CancelCatchingCallbackFailures(_source) is { } callbackFailures)
            {
                AddCallbackFailures(callbackFailures);
            }

            Volatile.Read(ref _stop)?.Stragglers?.Arm(this); // Token fired: children still running after the timeout are reported
        }
        finally
        {
            if (MarkFinished(1))
            {
                FinishClose();
            }
        }
    }

    // Runs once, when Token is cancelled for any reason; every cause recorded its reason before cancelling.
    private void OnCancelled()
    {
        int drained = 0;
        if (_maxConcurrency > 0)
        {
            lock (_lock)
            {
                var watch = Volatile.Read(ref _stop)?.Stragglers;
                while (_waiting is { Count: > 0 })
                {
                    var waiting = _waiting.Dequeue();
                    waiting.CancelWithoutRunning(_source.Token);
                    watch?.Remove(waiting);
                    drained++;
                }
            }
        }

        if (drained > 0)
        {
            _observation?.ChildrenCancelled(drained);
            if (MarkFinished(drained))
            {
                FinishClose();
            }
        }
    }

    // The stop state, made and published once.
    private StopState PublishStopState()
    {
        if (Volatile.Read(ref _stop) is { } stop)
        {
            return stop;
        }

        stop = new StopState();
        if (Interlocked.CompareExchange(ref _stop, stop, null) is { } published)
        {
            stop.Stopping.Dispose();
            return published;
        }

        return stop;
    }

    // CancelStopping for a caller that is not a member of the scope (a reader of Stopping). Once the scope closed its
    // failures have nowhere to go but UnobservedFailure.
    private void CancelStoppingAsMember()
    {
        if (TryAddActive())
        {
            try
            {
                CancelStopping();
            }
            finally
            {
                if (MarkFinished(1))
                {
                    FinishClose();
                }
            }
        }
        else if (Volatile.Read(ref _stop) is { } stop)
        {
            Cancellation.CancelReportingCallbackFailures(stop.Stopping, _name);
        }
    }

    // Cancels Stopping if it was made; its callbacks that throw are failures of the scope. Called by a member of the
    // scope (RequestCancel, Stop(grace)), so the scope is still open.
    private void CancelStopping()
    {
        if (Volatile.Read(ref _stop) is { } stop && Cancellation.CancelCatchingCallbackFailures(stop.Stopping) is { } failures)
        {
            AddCallbackFailures(failures);
        }
    }

    // What callbacks on a token of the scope threw when a member of the scope cancelled it: failures of the scope.
    private void AddCallbackFailures(IEnumerable<Exception> failures)
    {
        lock (_lock)
        {
            (_failures ??= []).AddRange(failures);
        }
    }

    // An OperationCanceledException for Stopping ends a child (or the body) as cancelled, as one for Token does.
    private bool IsStoppingToken(CancellationToken token) =>
        Volatile.Read(ref _stop) is { Stopping.IsCancellationRequested: true } stop && token == stop.Stopping.Token;

    private bool IsClosed => (Volatile.Read(ref _counts) & ClosedFlag) != 0;

    // Counts a new child; false when the scope is closed.
    private bool TryAddActive()
    {
        long counts = Volatile.Read(ref _counts);
        while ((counts & ClosedFlag) == 0)
        {
            long next = (counts & ~StartedMask) | ((counts + 1) & StartedMask);
            long seen = Interlocked.CompareExchange(ref _counts, next, counts);
            if (seen == counts)
            {
                return true;
            }

            counts = seen;
        }

        return false;
    }

    // Counts finished (or never run) children; true when this closed the scope.
    private bool MarkFinished(int children)
    {
        Interlocked.Add(ref _finished.Count, children);

        // Read after the increment (a full fence), as BeginJoining sets the flag before it compares the counts: one of
        // the two sees the other.
        return Volatile.Read(ref _finished.Joining) && TryClose();
    }

    // The join (or disposal) began; true when this closed the scope.
    private bool BeginJoining()
    {
        Volatile.Write(ref _finished.Joining, true);
        Interlocked.Or(ref _counts, JoiningFlag);
        return TryClose();
    }

    // Closes the scope once it is joining and every started child finished; exactly one caller ever gets true.
    private bool TryClose()
    {
        long counts = Volatile.Read(ref _counts);
        while ((counts & JoiningFlag) != 0 && (counts & ClosedFlag) == 0
            && (uint)counts == (uint)Volatile.Read(ref _finished.Count))
        {
            long seen = Interlocked.CompareExchange(ref _counts, counts | ClosedFlag, counts);
            if (seen == counts)
            {
                return true;
            }

            counts = seen;
        }

        return false;
    }

    // Runs once, on the thread that closed the scope; the failures list no longer changes once the scope is closed.
    private void FinishClose()
    {
        Debug.Assert(IsClosed, "Only a closed scope completes.");
        List<Exception>? failures;
        lock (_lock)
        {
            failures = _failures;
        }

        // Closed before the join completes, so that whoever awaited the join finds the scope no longer open.
        _outerRegistration.Unregister();
        _observation?.Tracker?.Close();
        ScopeMetrics.OpenScopes.Add(-1, KindTag);
        // Releases the timers; the sources are never disposed, so that a late Cancel() stays harmless.
        _timer?.Dispose();
        if (Volatile.Read(ref _stop) is { } stop)
        {
            Volatile.Read(ref stop.GraceTimer)?.Dispose();
            stop.Stragglers?.Dispose();
        }

        var reason = CancellationReason;
        if (reason != ScopeCancellationReason.None && ScopeMetrics.CancelledScopes.Enabled)
        {
            ScopeMetrics.CancelledScopes.Add(1, ReasonTags[(int)reason]);
        }

        // The span ends before the join completes: whoever awaits the join finds it ended.
        if (failures is { Count: > 0 })
        {
            _observation?.StopSpan("failed", failures[0], reason);
            _completion.TrySetException(failures);
        }
        else if (reason is ScopeCancellationReason.Stop || (reason is ScopeCancellationReason.Timeout && _options.TimeoutEndsQuietly))
        {
            // Quiet: the scope asked for it. A cancellation from outside still propagates.
            if (_outerToken.IsCancellationRequested)
            {
                _observation?.StopSpan("cancelled", null, reason);
                _completion.TrySetCanceled(_outerToken);
            }
            else
            {
                _observation?.StopSpan("stopped", null, reason);
                _completion.TrySetResult();
            }
        }
        else if (_source.IsCancellationRequested)
        {
            if (reason is ScopeCancellationReason.Timeout)
            {
                _timeoutError = new TimeoutException(
                    $"The TaskScope{(_name is null ? string.Empty : " '" + _name + "'")} did not complete within its timeout of {_options.Timeout}.");
                _observation?.StopSpan("timeout", _timeoutError, reason);
                _completion.TrySetException(_timeoutError);
            }
            else
            {
                _observation?.StopSpan("cancelled", null, reason);
                _completion.TrySetCanceled(_outerToken.IsCancellationRequested ? _outerToken : _source.Token);
            }
        }
        else
        {
            _observation?.StopSpan("completed", null, reason);
            _completion.TrySetResult();
        }
    }

    private async Task RunBodyAsync<T>(Delegate body, TaskCompletionSource<T> outcome)
    {
        if (_observation is { } observation)
        {
            observation.EnterAsCurrent(); // what the body traces and creates is inside the scope
        }

        T result = default!;
        Exception? bodyFailure = null;
        try
        {
            if (body is Func<TaskScope, Task<T>> withResult)
            {
                result = await withResult(this).ConfigureAwait(false);
            }
            else
            {
                await ((Func<TaskScope, Task>)body)(this).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException e) when (_source.IsCancellationRequested || IsStoppingToken(e.CancellationToken))
        {
            // The body is a member like the children: cancelled, not failed.
        }
        catch (Exception e)
        {
            bodyFailure = e;
            RequestCancel(ScopeCancellationReason.Failure);
        }

        Task join = JoinAsync();
        await join.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (bodyFailure is not null)
        {
            var failures = new List<Exception> { bodyFailure };
            // The scope's own timeout is not a child's failure; a child's TimeoutException is.
            if (join.Exception is { } childFailures && !ReferenceEquals(childFailures.InnerException, _timeoutError))
            {
                // A body that awaited a failed child rethrows that child's failure: list it once, first.
                failures.AddRange(childFailures.InnerExceptions.Where(e => !ReferenceEquals(e, bodyFailure)));
            }

            outcome.TrySetException(failures);
        }
        else
        {
            CopyOutcome(join, outcome, result);
        }
    }

    private void CopyOutcome<T>(Task join, TaskCompletionSource<T> outcome, T result)
    {
        if (join.IsFaulted)
        {
            outcome.TrySetException(join.Exception!.InnerExceptions);
        }
        else if (join.IsCanceled)
        {
            outcome.TrySetCanceled(_outerToken.IsCancellationRequested ? _outerToken : _source.Token);
        }
        else
        {
            outcome.TrySetResult(result);
        }
    }

    /// <summary>What a scope needs once it is stopped in two phases, or its <see cref="Stopping"/> token is read.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "Like the scope's own token source, never disposed: a late read of Stopping stays harmless.")]
    private sealed class StopState
    {
        public readonly CancellationTokenSource Stopping = new();
#pragma warning disable CA1051 // A field on purpose: Volatile needs it by reference.
        public ITimer? GraceTimer;
#pragma warning restore CA1051

        /// <summary>The running children, with <see cref="TaskScopeOptions.StragglerTimeout"/>: made with the scope.</summary>
        public StragglerWatch? Stragglers { get; init; }
    }

    /// <summary>The result type of children started without one.</summary>
    private readonly struct VoidResult;

    /// <summary>What the children write when they finish, padded to a cache line of its own so that finishing
    /// children never contend with the thread that starts them.</summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 192)]
    private sealed class FinishedCounter
    {
#pragma warning disable CA1051 // Fields on purpose: Interlocked and Volatile need them by reference.
        [System.Runtime.InteropServices.FieldOffset(64)]
        public long Count;

        [System.Runtime.InteropServices.FieldOffset(72)]
        public bool Joining;
#pragma warning restore CA1051
    }

    /// <summary>A child waiting to run: scheduled when it gets a slot, or cancelled without running.</summary>
    private interface IChild
    {
        void Schedule();

        void CancelWithoutRunning(CancellationToken token);
    }

    /// <summary>One child: its own outcome (the task <see cref="Start{T}(Func{CancellationToken, Task{T}})"/> returns) and its thread-pool work item, in
    /// one object.</summary>
    private sealed class Child<T>(TaskScope scope, Delegate work, ExecutionContext? context)
        : TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously), IChild, IThreadPoolWorkItem
    {
        public void Schedule()
        {
            if (ScopeMetrics.RunningChildren.Enabled)
            {
                ScopeMetrics.RunningChildren.Add(1);
            }

            // Like Task.Run: from a thread-pool thread the child goes to that thread's local queue, where other
            // threads steal it; the global queue would make every Start contend.
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
        }

        public void CancelWithoutRunning(CancellationToken token) => TrySetCanceled(token);

        void IThreadPoolWorkItem.Execute()
        {
            // A thread-pool work item starts in the default context. With no context to restore (the caller suppressed
            // the flow), or with the one the thread already has (a caller without AsyncLocal values), the child runs as
            // it is: restoring it would only cost time.
            if (context is null || ReferenceEquals(context, ExecutionContext.Capture()))
            {
                _ = RunAsync();
            }
            else
            {
                ExecutionContext.Run(context, static state => _ = ((Child<T>)state!).RunAsync(), this);
            }
        }

        // Never faults: every outcome goes to the child's task and to the scope.
        private async Task RunAsync()
        {
            if (scope._observation is { } observation)
            {
                observation.EnterAsCurrent(); // what the child traces and creates is inside the scope
            }

            CancellationToken token = scope.Token;
            try
            {
                if (scope._options.Limiter is { } limiter) // read through the options: no field of its own in every scope
                {
                    TrySetResult(await RunWithPermitAsync(limiter, token).ConfigureAwait(false));
                }
                else if (work is Func<CancellationToken, Task<T>> withResult)
                {
                    TrySetResult(await withResult(token).ConfigureAwait(false));
                }
                else
                {
                    await ((Func<CancellationToken, Task>)work)(token).ConfigureAwait(false);
                    TrySetResult(default!);
                }
            }
            catch (OperationCanceledException e) when (token.IsCancellationRequested || scope.IsStoppingToken(e.CancellationToken))
            {
                scope._observation?.ChildrenCancelled(1);
                TrySetCanceled(token.IsCancellationRequested ? token : e.CancellationToken);
            }
            catch (Exception e)
            {
                scope.OnChildFailed(e);
                TrySetException(e);
                _ = Task.Exception; // the scope surfaces it; an ignored child task must not raise it again
            }

            scope.OnChildFinished(this);
        }

        // The permit goes back before the child's outcome is set: whoever sees the child end finds it free.
        private async Task<T> RunWithPermitAsync(RateLimiter limiter, CancellationToken token)
        {
            using var permit = await Permits.AcquireAsync(limiter, scope._name, token).ConfigureAwait(false);
            if (work is Func<CancellationToken, Task<T>> withResult)
            {
                return await withResult(token).ConfigureAwait(false);
            }

            await ((Func<CancellationToken, Task>)work)(token).ConfigureAwait(false);
            return default!;
        }
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "RunAsync always joins the scope, which closes it.")]
    private sealed class Race<T>(Func<CancellationToken, Task<T>>[] contenders, CancellationToken cancellationToken)
    {
        private readonly TaskScope _scope = new(RaceOptions, cancellationToken);
        private T? _winner;
        private int _won;

        public Task<T> RunAsync()
        {
            var outcome = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
            _ = RunCoreAsync(outcome);
            return outcome.Task;
        }

        private async Task RunCoreAsync(TaskCompletionSource<T> outcome)
        {
            foreach (var contender in contenders)
            {
                _ = _scope.Start(token => RunContenderAsync(contender, token));
            }

            Task join = _scope.JoinAsync();
            await join.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (Volatile.Read(ref _won) == 0)
            {
                // No winner: the join's failures (all of them) or cancellation are the race's.
                _scope.CopyOutcome(join, outcome, default!);
                return;
            }

            if (join.Exception is { } loserFailures)
            {
                foreach (var failure in loserFailures.InnerExceptions)
                {
                    ScopeDiagnostics.ReportUnobserved(RaceOptions.Name, failure);
                }
            }

            outcome.TrySetResult(_winner!);
        }

        private async Task RunContenderAsync(Func<CancellationToken, Task<T>> contender, CancellationToken token)
        {
            T value = await contender(token).ConfigureAwait(false);
            if (Interlocked.CompareExchange(ref _won, 1, 0) == 0)
            {
                _winner = value;
                _scope.Cancel();
                return;
            }

            switch (value)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }
}
