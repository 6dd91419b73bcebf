namespace AsyncScopes;

public sealed partial class TaskScope
{
    /// <summary>
    /// Starts <paramref name="work"/> as a child of the scope and waits until it says it is ready (Trio's
    /// <c>nursery.start</c>): a listener that returns once it listens, a subscription once it is subscribed. The child
    /// goes on running in the scope afterwards.
    /// </summary>
    /// <typeparam name="TReady">What the child hands over when it is ready (the address it listens on, say).</typeparam>
    /// <param name="work">The child; it receives the callback to call once ready, and its token: <see cref="Token"/>,
    /// or, with a <paramref name="cancellationToken"/> that can be cancelled, a token that <see cref="Token"/> cancels
    /// and that <paramref name="cancellationToken"/> also cancels until the child is ready.</param>
    /// <param name="name">The child's name in diagnostics (<see cref="TaskScopeOptions.StragglerTimeout"/>).</param>
    /// <param name="cancellationToken">Gives up waiting (a service's start that is cancelled): before the child is
    /// ready, it cancels the wait <em>and</em> the child, which nobody would wait for; the child's cancellation is not a
    /// failure of the scope. Once the child is ready, it has no effect on it.</param>
    /// <returns>
    /// The value the child passed to the callback, as soon as it called it. If the child fails, or returns, before it
    /// called it: that failure (an <see cref="InvalidOperationException"/> for a return), and the scope is
    /// <em>not</em> failed by it: the caller decides. Cancelled when <paramref name="cancellationToken"/> or the scope
    /// is cancelled before the child is ready (the child is cancelled and awaited with the scope, as any other); a
    /// failure of the child after that (other than its cancellation) is the scope's, so that it is never lost. A
    /// failure after ready is a failure of the scope, like any child's.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed).</exception>
    /// <remarks>The callback throws <see cref="InvalidOperationException"/> when called a second time; called after
    /// the wait was given up, it does nothing. When <paramref name="cancellationToken"/> is cancelled already, the
    /// child does not run. With <see cref="TaskScopeOptions.MaxConcurrency"/>, the child waits for a slot like any
    /// other: a child of the scope that awaits <c>StartAsync</c> while it holds the last slot waits forever.</remarks>
    public Task<TReady> StartAsync<TReady>(
        Func<Action<TReady>, CancellationToken, Task> work, string? name = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<TReady>(cancellationToken);
        }

        var start = new ReadySignal<TReady>(this, work, cancellationToken);
        try
        {
            _ = StartCore<VoidResult>(new Func<CancellationToken, Task>(start.RunAsync), name);
        }
        catch (InvalidOperationException)
        {
            start.Dispose(); // the scope is closed: no child, nothing to wait for
            throw;
        }

        return start.Task;
    }

    /// <summary>
    /// Starts <paramref name="work"/> as a child of the scope and waits until it says it is ready, with the rules of
    /// <see cref="StartAsync{TReady}(Func{Action{TReady}, CancellationToken, Task}, string?, CancellationToken)"/>.
    /// </summary>
    /// <param name="work">The child; it receives the callback to call once ready, and its token.</param>
    /// <param name="name">The child's name in diagnostics.</param>
    /// <param name="cancellationToken">Gives up waiting, and cancels the child, before it is ready.</param>
    /// <returns>A task that completes when the child called the callback; see the generic form for failures.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed).</exception>
    public Task StartAsync(Func<Action, CancellationToken, Task> work, string? name = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return StartAsync<bool>((ready, token) => work(() => ready(true), token), name, cancellationToken);
    }

    /// <summary>The readiness of one child started by <see cref="StartAsync{TReady}"/>.</summary>
    private sealed class ReadySignal<TReady> : TaskCompletionSource<TReady>, IDisposable
    {
        private const int Waiting = 0;
        private const int Ready = 1;
        private const int GivenUp = 2; // the scope or the starter stopped waiting first

        private readonly TaskScope _scope;
        private readonly Func<Action<TReady>, CancellationToken, Task> _work;

        // The child's own token, made only when the starter's token can cancel it before it is ready.
        private readonly CancellationTokenSource? _child;
        private CancellationTokenRegistration _scopeWait;
        private CancellationTokenRegistration _starterWait;
        private int _state;

        public ReadySignal(TaskScope scope, Func<Action<TReady>, CancellationToken, Task> work, CancellationToken starter)
            : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
            _scope = scope;
            _work = work;

            // Registered here, not in the child: a child that never runs (the scope was cancelled, or cancelled it
            // while it waited for a slot) must still end the wait. The starter's first: a scope cancelled already
            // gives up at once, and unregisters it.
            if (starter.CanBeCanceled)
            {
                _child = new CancellationTokenSource();
                _starterWait = starter.UnsafeRegister(static (state, token) => ((ReadySignal<TReady>)state!).GiveUp(token), this);
            }

            _scopeWait = scope.Token.UnsafeRegister(static state => ((ReadySignal<TReady>)state!).GiveUp(default), this);
        }

        // The child itself. Until it is ready, its failure and its return are the starter's, not the scope's.
        public async Task RunAsync(CancellationToken scopeToken)
        {
            if (Volatile.Read(ref _state) == GivenUp)
            {
                Dispose(); // the starter gave up before the child ran: nobody waits for it
                return;
            }

            CancellationToken token = scopeToken;
            CancellationTokenRegistration link = default;
            if (_child is not null)
            {
                link = scopeToken.UnsafeRegister(static state => ((ReadySignal<TReady>)state!).CancelChild(), this);
                token = _child.Token;
            }

            try
            {
                await _work(Signal, token).ConfigureAwait(false);
            }
            catch (Exception failure) when (Volatile.Read(ref _state) != Ready)
            {
                if (failure is OperationCanceledException && token.IsCancellationRequested)
                {
                    TrySetCanceled(token);
                }
                else if (!TrySetException(failure))
                {
                    // The starter stopped waiting (the scope was cancelled first): the failure is the scope's, not lost.
                    throw;
                }

                return;
            }
            finally
            {
                link.Dispose();
                Dispose();
            }

            if (Volatile.Read(ref _state) == Waiting)
            {
                TrySetException(new InvalidOperationException("The child started with StartAsync returned without calling its ready callback."));
            }
        }

        // Releases the registrations (waiting for a GiveUp running now on another thread, so that it never cancels a
        // disposed source) and the child's token.
        public void Dispose()
        {
            _starterWait.Dispose();
            _scopeWait.Dispose();
            _child?.Dispose();
        }

        private void Signal(TReady value)
        {
            switch (Interlocked.CompareExchange(ref _state, Ready, Waiting))
            {
                case Waiting:
                    // Not Dispose: the child may call this from a callback of either token.
                    _starterWait.Unregister();
                    _scopeWait.Unregister();
                    TrySetResult(value);
                    break;
                case Ready:
                    throw new InvalidOperationException("The ready callback of a child started with StartAsync was called twice.");
                default:
                    break; // nobody waits any more; the child's token is cancelled
            }
        }

        private void GiveUp(CancellationToken starter)
        {
            if (Interlocked.CompareExchange(ref _state, GivenUp, Waiting) != Waiting)
            {
                return;
            }

            // Not Dispose: this runs in a callback of one of them. Nothing holds a long-lived token after this.
            _starterWait.Unregister();
            _scopeWait.Unregister();

            if (starter.IsCancellationRequested)
            {
                TrySetCanceled(starter);
                CancelChild();
            }
            else
            {
                TrySetCanceled(_scope.Token); // the scope's cancellation, which reaches the child through its token
            }
        }

        // What the child's token callbacks throw is a failure of the scope, as for Token's own callbacks.
        private void CancelChild()
        {
            if (_child is not null && Cancellation.CancelCatchingCallbackFailures(_child) is { } failures)
            {
                foreach (var failure in failures)
                {
                    _scope.OnChildFailed(failure);
                }
            }
        }
    }
}
