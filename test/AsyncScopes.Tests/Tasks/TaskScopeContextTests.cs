using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Tasks;

/// <summary><see cref="TaskScope.Context"/>: a scope entered as a context manager, next to the resources its children use.</summary>
public sealed class TaskScopeContextTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_scope_is_joined_before_the_resource_entered_before_it_is_exited()
    {
        var events = new List<string>();
        var resource = AsyncContext.Create(
            _ => new ValueTask<string>("connection"),
            (string _, Exception? _) =>
            {
                lock (events)
                {
                    events.Add("connection closed");
                }

                return new ValueTask<bool>(false);
            });
        var release = NewGate();

        var run = Task.Run(async () =>
        {
            await using var stack = new AsyncExitStack();
            var connection = await stack.EnterAsync(resource);
            var scope = await stack.EnterAsync(TaskScope.Context());
            _ = scope.Start(async _ =>
            {
                await release.Task;
                lock (events)
                {
                    events.Add("child used " + connection);
                }
            });
            stack.Complete();
        });
        release.SetResult();
        await run.WaitAsync(Patience);

        Assert.Equal(["child used connection", "connection closed"], events);
    }

    [Fact]
    public async Task A_failing_block_cancels_the_children_waits_for_them_and_its_exception_goes_on()
    {
        var waiting = NewGate();
        Task? child = null;
        var failure = new InvalidOperationException("block");

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => TaskScope.Context().WithAsync(async (scope, ct) =>
        {
            child = scope.Start(async token =>
            {
                waiting.SetResult();
                await Task.Delay(Timeout.Infinite, token);
            });
            await waiting.Task;
            throw failure;
        }).WaitAsync(Patience));

        Assert.Same(failure, thrown);
        Assert.True(child!.IsCanceled);
    }

    [Fact]
    public async Task Children_that_fail_with_the_block_are_listed_after_its_exception()
    {
        var waiting = NewGate();
        var blockFailure = new InvalidOperationException("block");
        var childFailure = new FormatException("child, while cancelled");

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => TaskScope.Context().WithAsync(async (scope, ct) =>
        {
            _ = scope.Start(async token =>
            {
                waiting.SetResult();
                await WhenCancelled(token);
                throw childFailure;
            });
            await waiting.Task;
            throw blockFailure;
        }).WaitAsync(Patience));

        Assert.Equal([blockFailure, childFailure], thrown.InnerExceptions);
    }

    [Fact]
    public async Task Failures_of_other_exits_before_it_are_listed_once_and_flat()
    {
        var blockFailure = new InvalidOperationException("block");
        var resourceFailure = new IOException("resource exit");
        var childFailure = new FormatException("child, while cancelled");
        var resource = AsyncContext.Create(_ => new ValueTask<int>(1), (int _, Exception? _) => throw resourceFailure);
        var waiting = NewGate();

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => AsyncExitStack.RunAsync(async (stack, ct) =>
        {
            var scope = await stack.EnterAsync(TaskScope.Context(), ct);
            await stack.EnterAsync(resource, ct); // exited first: it sees the block's failure and adds its own
            _ = scope.Start(async token =>
            {
                waiting.SetResult();
                await WhenCancelled(token);
                throw childFailure;
            });
            await waiting.Task;
            throw blockFailure;
        }).WaitAsync(Patience));

        Assert.Equal([blockFailure, resourceFailure, childFailure], thrown.InnerExceptions);
    }

    [Fact]
    public async Task A_block_stopped_by_its_own_scope_ends_quietly()
    {
        await TaskScope.Context().WithAsync(async (scope, ct) =>
        {
            scope.Stop();
            await Task.Delay(Timeout.Infinite, scope.Token);
        }).WaitAsync(Patience);
    }

    [Fact]
    public async Task A_completed_block_joins_and_a_child_failure_is_thrown()
    {
        var failure = new InvalidOperationException("child");

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => TaskScope.Context().WithAsync((scope, ct) =>
        {
            _ = scope.Start(_ => Task.FromException(failure));
            return Task.CompletedTask;
        }).WaitAsync(Patience));

        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task Several_child_failures_of_a_completed_block_are_thrown_together_first_first()
    {
        var first = new InvalidOperationException("first");
        var second = new FormatException("second");
        var options = new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll };

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => TaskScope.Context(options).WithAsync(async (scope, ct) =>
        {
            await Settled(scope.Start(_ => Task.FromException(first)), Patience);
            _ = scope.Start(_ => Task.FromException(second));
        }).WaitAsync(Patience));

        Assert.Equal([first, second], thrown.InnerExceptions);
    }

    [Fact]
    public async Task The_token_given_to_enter_cancels_the_scope()
    {
        using var cancellation = new CancellationTokenSource();
        var manager = TaskScope.Context();
        var scope = await manager.EnterAsync(cancellation.Token);

        cancellation.Cancel();

        Assert.True(scope.Token.IsCancellationRequested);
        Assert.Equal(ScopeCancellationReason.Outer, scope.CancellationReason);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await manager.ExitAsync(null));
    }

    [Fact]
    public async Task A_manager_is_entered_once_at_a_time_and_again_after_its_exit()
    {
        var manager = TaskScope.Context();
        var first = await manager.EnterAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await manager.EnterAsync());
        Assert.False(await manager.ExitAsync(null));
        var second = await manager.EnterAsync();
        Assert.False(await manager.ExitAsync(null));

        Assert.NotSame(first, second);
    }

    [Fact]
    public void Options_are_validated_when_the_manager_is_made()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskScope.Context(new TaskScopeOptions { MaxConcurrency = -1 }));
    }
}
