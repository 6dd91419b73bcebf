using AsyncScopes.Tests.Support;

namespace AsyncScopes.Tests.Contexts;

/// <summary>
/// How a stack closes: synchronously while its exits complete at once, asynchronously from the first exit that does
/// not, and closed for good either way.
/// </summary>
public sealed class AsyncExitStackClosingTests
{
    public static TheoryData<string> Closings => ["DisposeAsync", "ExitAsync"];

    [Theory]
    [MemberData(nameof(Closings))]
    public async Task A_stack_whose_exits_ran_synchronously_is_closed_for_good(string closing)
    {
        var stack = new AsyncExitStack();
        var resource = new TrackedResource();
        stack.Push(resource);
        stack.Complete();

        var closed = closing == "DisposeAsync" ? stack.DisposeAsync().AsTask() : stack.ExitAsync(null).AsTask();

        Assert.True(closed.IsCompletedSuccessfully); // no exit had anything to wait for
        await closed;
        Assert.Equal(1, resource.Disposals);
        Assert.Equal(0, stack.Count);
        var late = new TrackedResource();
        Assert.Throws<InvalidOperationException>(() => stack.Push(late));
        Assert.Throws<InvalidOperationException>(() => stack.PushExit(_ => new ValueTask<bool>(true)));
        Assert.Throws<InvalidOperationException>(() => stack.PopAll());
        Assert.Throws<InvalidOperationException>(stack.Complete);
        Assert.False(await stack.ExitAsync(new FormatException("after the close")));
        await stack.DisposeAsync();
        Assert.Equal(0, late.Disposals);
        Assert.Equal(1, resource.Disposals);
    }

    [Fact]
    public async Task DisposeAsync_returns_at_the_first_pending_exit_and_runs_the_earlier_ones_when_it_completes()
    {
        var order = new List<string>();
        var pending = new PendingValueTask<bool>();
        var stack = new AsyncExitStack();
        stack.Defer(() =>
        {
            order.Add("first registered");
            return ValueTask.CompletedTask;
        });
        stack.PushExit(_ =>
        {
            order.Add("pending");
            return pending.Task;
        });
        stack.Complete();

        var disposing = stack.DisposeAsync().AsTask();

        Assert.False(disposing.IsCompleted);
        Assert.Equal(["pending"], order);
        pending.SetResult(false);
        await disposing;
        Assert.Equal(["pending", "first registered"], order);
        Assert.True(pending.Consumed);
    }

    [Fact]
    public async Task ExitAsync_returns_at_the_first_pending_exit_and_reports_its_suppression_when_it_completes()
    {
        var pending = new PendingValueTask<bool>();
        var bodyError = new FormatException("body");
        var seen = new List<Exception?>();
        var stack = new AsyncExitStack();
        stack.PushExit(Seeing(seen, () => new ValueTask<bool>(false)));
        stack.PushExit(Seeing(seen, () => pending.Task));

        var exiting = stack.ExitAsync(bodyError).AsTask();

        Assert.False(exiting.IsCompleted);
        pending.SetResult(true);
        Assert.True(await exiting);
        Assert.Equal([bodyError, null], seen);
    }

    [Fact]
    public async Task An_abandoned_stack_whose_exit_completes_later_does_not_throw_the_abandonment()
    {
        var pending = new PendingValueTask<bool>();
        var seen = new List<Exception?>();
        var stack = new AsyncExitStack();
        stack.PushExit(Seeing(seen, () => pending.Task));

        var disposing = stack.DisposeAsync().AsTask(); // no Complete: the exits see an abandonment
        pending.SetResult(false);

        await disposing;
        Assert.IsType<ScopeAbandonedException>(Assert.Single(seen));
    }

    [Fact]
    public async Task An_abandoned_stack_whose_later_exit_suppressed_the_abandonment_does_not_throw()
    {
        var pending = new PendingValueTask<bool>();
        var seen = new List<Exception?>();
        var stack = new AsyncExitStack();
        stack.PushExit(Seeing(seen, () => new ValueTask<bool>(false)));
        stack.PushExit(Seeing(seen, () => pending.Task));

        var disposing = stack.DisposeAsync().AsTask();
        pending.SetResult(true);

        await disposing;
        Assert.Equal(2, seen.Count);
        Assert.IsType<ScopeAbandonedException>(seen[0]);
        Assert.Null(seen[1]);
    }

    [Fact]
    public async Task A_pending_disposal_is_awaited_and_one_already_complete_is_read()
    {
        var pendingResource = new PendingDisposable();
        var pendingCallback = new PendingValueTask<bool>();
        var completeResource = new PendingDisposable();
        completeResource.Disposal.SetResult(true);
        var stack = new AsyncExitStack();
        stack.Push(completeResource);
        stack.Defer(() => pendingCallback.Untyped);
        stack.Push(pendingResource);
        stack.Complete();

        var disposing = stack.DisposeAsync().AsTask();

        Assert.False(disposing.IsCompleted);
        pendingResource.Disposal.SetResult(true);
        Assert.False(disposing.IsCompleted);
        pendingCallback.SetResult(true);
        await disposing;
        Assert.True(pendingResource.Disposal.Consumed);
        Assert.True(pendingCallback.Consumed);
        Assert.True(completeResource.Disposal.Consumed); // a ValueTask is read once, even one complete at once
    }

    [Fact]
    public async Task A_manager_exited_because_the_stack_closed_while_it_entered_can_fail_and_that_failure_is_the_cause()
    {
        var stack = new AsyncExitStack();
        var enter = new PendingValueTask<int>();
        var exitError = new ArithmeticException("exit");
        var manager = AsyncContext.Create(_ => enter.Task, (_, _) => throw exitError);

        var entering = stack.EnterAsync(manager).AsTask();
        await stack.DisposeAsync();
        enter.SetResult(1);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => entering);
        Assert.Same(exitError, thrown.InnerException);
    }

    [Fact]
    public async Task RunAsync_returns_the_result_of_a_body_that_closed_its_stack_itself()
    {
        var resource = new TrackedResource();

        int result = await AsyncExitStack.RunAsync(async (stack, _) =>
        {
            stack.Push(resource);
            stack.Complete();
            await stack.DisposeAsync();
            return 42;
        });

        Assert.Equal(42, result);
        Assert.Equal(1, resource.Disposals);
    }

    [Fact]
    public async Task RunAsync_rethrows_the_exception_of_a_body_that_closed_its_stack_itself()
    {
        var bodyError = new FormatException("body");
        var resource = new TrackedResource();

        var thrown = await Assert.ThrowsAsync<FormatException>(() => AsyncExitStack.RunAsync<int>(async (stack, _) =>
        {
            stack.Push(resource);
            await stack.DisposeAsync();
            throw bodyError;
        }));

        Assert.Same(bodyError, thrown);
        Assert.Equal(1, resource.Disposals);
    }

    // An exit that records the exception it sees, then does what the test tells it to.
    private static Func<Exception?, ValueTask<bool>> Seeing(List<Exception?> seen, Func<ValueTask<bool>> outcome) => e =>
    {
        seen.Add(e);
        return outcome();
    };
}
