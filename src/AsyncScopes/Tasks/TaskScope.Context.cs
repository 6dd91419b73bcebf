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
    /// the first failure first), a cancellation or the timeout as the join ends. When the block failed, the exit
    /// cancels the scope (<see cref="ScopeCancellationReason.Failure"/>), waits for every child, and lets the block's
    /// exception go on; children that failed too are added after it in a <see cref="ScopeExitException"/>. The exit
    /// never suppresses. The manager can be entered again once exited, but not while it is entered.
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
            if (exception is not null)
            {
                scope.RequestCancel(ScopeCancellationReason.Failure);
            }

            Task join = scope.JoinAsync();
            await join.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (exception is null)
            {
                if (join.Exception is { InnerExceptions: { Count: > 1 } several })
                {
                    throw new ScopeExitException(several);
                }

                await join.ConfigureAwait(false); // rethrows the one failure, the cancellation or the timeout
                return false;
            }

            // The scope's own timeout is not a child's failure; a child's exception that the block rethrew is listed once.
            var children = join.Exception?.InnerExceptions
                .Where(failure => !ReferenceEquals(failure, exception) && !ReferenceEquals(failure, scope._timeoutError))
                .ToList();
            if (children is { Count: > 0 })
            {
                throw new ScopeExitException([exception, .. children]);
            }

            return false;
        }
    }
}
