namespace AsyncScopes;

public sealed partial class TaskScope
{
    /// <summary>
    /// A context manager for a new scope (Python's <c>async with asyncio.TaskGroup() as group</c>): entered into an
    /// <see cref="AsyncExitStack"/> next to the resources its children use, it is joined before the resources entered
    /// before it are exited.
    /// </summary>
    /// <param name="options">The options of each scope it makes; <see langword="null"/> for the defaults. Validated now.</param>
    /// <returns>
    /// A manager whose enter makes a new scope, with enter's cancellation token as its outer token. Its exit, when the
    /// block completed, joins the scope: a child's failure is thrown (several as a <see cref="ScopeExitException"/>,
    /// the first failure first), a cancellation or the timeout as the join ends. A block that ends with the
    /// cancellation of its own scope (its token, or <see cref="Stopping"/>) counts as completed, as in
    /// <see cref="RunAsync(Func{TaskScope, Task}, CancellationToken, TaskScopeOptions?)"/>: after
    /// <see cref="Stop()"/> the exit suppresses it and the block ends quietly. When the block failed, the exit cancels
    /// the scope (<see cref="ScopeCancellationReason.Failure"/>), waits for every child, and lets the block's
    /// exception go on; children that failed too are added after it (after every failure it saw, flat) in a
    /// <see cref="ScopeExitException"/>. The manager can be entered again once its exit began, not before.
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException"><see cref="TaskScopeOptions.TimeProvider"/> is null.</exception>
    public static IAsyncContextManager<TaskScope> Context(TaskScopeOptions? options = null)
    {
        options?.Validate();
        return new ScopeContext(options);
    }

    /// <summary>The manager <see cref="Context"/> returns: one scope at a time.</summary>
    private sealed class ScopeContext(TaskScopeOptions? options) : IAsyncContextManager<TaskScope>
    {
        private TaskScope? _scope;

        public ValueTask<TaskScope> EnterAsync(CancellationToken cancellationToken = default)
        {
            if (Volatile.Read(ref _scope) is not null)
            {
                throw new InvalidOperationException("This TaskScope context manager is entered already: call TaskScope.Context once per use.");
            }

            cancellationToken.ThrowIfCancellationRequested();
            var scope = new TaskScope(options, cancellationToken);
            if (Interlocked.CompareExchange(ref _scope, scope, null) is not null)
            {
                scope.Cancel();
                _ = scope.JoinAsync();
                throw new InvalidOperationException("This TaskScope context manager is entered already: call TaskScope.Context once per use.");
            }

            return new ValueTask<TaskScope>(scope);
        }

        public async ValueTask<bool> ExitAsync(Exception? exception)
        {
            var scope = Interlocked.Exchange(ref _scope, null)
                ?? throw new InvalidOperationException("This TaskScope context manager was not entered.");

            // As in RunAsync, a block that ends with the cancellation of its own scope was cancelled, not failed.
            var blockCancelled = exception is OperationCanceledException cancelled
                && (scope.Token.IsCancellationRequested || scope.IsStoppingToken(cancelled.CancellationToken));
            if (exception is not null && !blockCancelled)
            {
                scope.RequestCancel(ScopeCancellationReason.Failure);
            }

            Task join = scope.JoinAsync();
            await join.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (exception is null || blockCancelled)
            {
                if (join.Exception is { InnerExceptions: { Count: > 1 } several })
                {
                    throw new ScopeExitException(several);
                }

                if (join.IsCanceled && blockCancelled)
                {
                    return false; // the cancellation goes on as the block threw it
                }

                await join.ConfigureAwait(false); // rethrows the one failure, the cancellation or the timeout
                return blockCancelled; // a stopped scope ends quietly
            }

            // What the exit saw may combine the exits of others already (an AsyncExitStack): listed flat, each once.
            IReadOnlyList<Exception> seen = exception is ScopeExitException combined ? combined.InnerExceptions : [exception];
            var children = join.Exception?.InnerExceptions
                .Where(failure => !seen.Contains(failure) && !ReferenceEquals(failure, scope._timeoutError))
                .ToList();
            if (children is { Count: > 0 })
            {
                throw new ScopeExitException([.. seen, .. children]);
            }

            return false;
        }
    }
}
