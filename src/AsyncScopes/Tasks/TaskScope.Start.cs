namespace AsyncScopes;

public sealed partial class TaskScope
{
    /// <summary>
    /// Starts <paramref name="work"/> as a child of the scope and waits until it says it is ready (Trio's
    /// <c>nursery.start</c>): a listener that returns once it listens, a subscription once it is subscribed. The child
    /// goes on running in the scope afterwards.
    /// </summary>
    /// <typeparam name="TReady">What the child hands over when it is ready (the address it listens on, say).</typeparam>
    /// <param name="work">The child; it receives the callback to call once ready, and <see cref="Token"/>.</param>
    /// <returns>
    /// The value the child passed to the callback, as soon as it called it. If the child fails, or returns, before it
    /// called it: that failure (an <see cref="InvalidOperationException"/> for a return), and the scope is
    /// <em>not</em> failed by it: the caller decides. Cancelled when the scope is cancelled before the child is
    /// ready (the child is cancelled and awaited with the scope, as any other); a failure of the child after that is
    /// the scope's, so that it is never lost. A failure after ready is a failure of the scope, like any child's.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed).</exception>
    /// <remarks>The callback throws <see cref="InvalidOperationException"/> when called a second time. With
    /// <see cref="TaskScopeOptions.MaxConcurrency"/>, the child waits for a slot like any other: a child of the scope
    /// that awaits <c>StartAsync</c> while it holds the last slot waits forever.</remarks>
    public Task<TReady> StartAsync<TReady>(Func<Action<TReady>, CancellationToken, Task> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var start = new ReadySignal<TReady>();

        // Registered here, not in the child: a child that never runs (the scope was cancelled, or cancelled it while
        // it waited for a slot) must still cancel the wait for ready.
        start.CancelBeforeReady(Token);
        _ = StartCore<VoidResult>(new Func<CancellationToken, Task>(token => start.RunAsync(work, token)), null);
        return start.Task;
    }

    /// <summary>
    /// Starts <paramref name="work"/> as a child of the scope and waits until it says it is ready, with the rules of
    /// <see cref="StartAsync{TReady}(Func{Action{TReady}, CancellationToken, Task})"/>.
    /// </summary>
    /// <param name="work">The child; it receives the callback to call once ready, and <see cref="Token"/>.</param>
    /// <returns>A task that completes when the child called the callback; see the generic form for failures.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="work"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The scope is closed (joined or disposed).</exception>
    public Task StartAsync(Func<Action, CancellationToken, Task> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return StartAsync<bool>((ready, token) => work(() => ready(true), token));
    }

    /// <summary>The readiness of one child started by <see cref="StartAsync{TReady}"/>.</summary>
    private sealed class ReadySignal<TReady> : TaskCompletionSource<TReady>
    {
        private int _signalled;
        private CancellationTokenRegistration _cancellation;

        public ReadySignal()
            : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
        }

        public void CancelBeforeReady(CancellationToken token) =>
            _cancellation = token.UnsafeRegister(static state => ((ReadySignal<TReady>)state!).CancelIfNotReady(), this);

        // The child itself. Until it is ready, its failure and its return are the starter's, not the scope's.
        public async Task RunAsync(Func<Action<TReady>, CancellationToken, Task> work, CancellationToken token)
        {
            try
            {
                await work(Signal, token).ConfigureAwait(false);
            }
            catch (Exception failure) when (Volatile.Read(ref _signalled) == 0)
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
                _cancellation.Dispose();
            }

            if (Volatile.Read(ref _signalled) == 0)
            {
                TrySetException(new InvalidOperationException("The child started with StartAsync returned without calling its ready callback."));
            }
        }

        private void Signal(TReady value)
        {
            if (Interlocked.Exchange(ref _signalled, 1) != 0)
            {
                throw new InvalidOperationException("The ready callback of a child started with StartAsync was called twice.");
            }

            TrySetResult(value);
        }

        private void CancelIfNotReady()
        {
            if (Volatile.Read(ref _signalled) == 0)
            {
                TrySetCanceled();
            }
        }
    }
}
