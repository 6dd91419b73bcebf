using AsyncScopes.Tests.Support;

namespace AsyncScopes.Tests.Contexts;

/// <summary>
/// The context managers never resume on the caller's <see cref="SynchronizationContext"/>: each await of an enter, a
/// body or an exit that completes later resumes where it completed (see <see cref="CallerContext"/>).
/// </summary>
public sealed class CallerContextTests
{
    private readonly CallerContext _caller = new();

    [Fact]
    public async Task WithAsync_resumes_after_enter_body_and_exit_without_the_callers_context()
    {
        var manager = new PendingManager(_caller);
        var body = new TaskCompletionSource();
        Task with = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () => with = manager.WithAsync((_, _) => _caller.Pending(body.Task)),
            () => manager.Enter.SetResult(1),
            body.SetResult,
            () => manager.Exit.SetResult(false));

        await with;
        Assert.Equal([null], manager.ExitsSeen);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task WithAsync_with_a_result_resumes_after_enter_body_and_exit_without_the_callers_context()
    {
        var manager = new PendingManager(_caller);
        var body = new TaskCompletionSource<string>();
        Task<string?> with = Task.FromResult<string?>(null);

        await CallerContext.RunStepsAsync(
            () => with = manager.WithAsync((_, _) => _caller.Pending(body.Task)),
            () => manager.Enter.SetResult(1),
            () => body.SetResult("result"),
            () => manager.Exit.SetResult(false));

        Assert.Equal("result", await with);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_manager_made_of_an_enter_and_a_release_resumes_without_the_callers_context()
    {
        var enter = new PendingValueTask<int>();
        var release = new PendingValueTask<bool>();
        var released = new List<int>();
        var manager = AsyncContext.Create(
            _ =>
            {
                _caller.MakeCurrent();
                return enter.Task;
            },
            value =>
            {
                released.Add(value);
                _caller.MakeCurrent();
                return release.Untyped;
            });
        Task with = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () => with = manager.WithAsync((_, _) => Task.CompletedTask),
            () => enter.SetResult(7),
            () => release.SetResult(true));

        await with;
        Assert.Equal([7], released);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_manager_made_of_an_enter_and_an_exit_awaits_the_exit_without_the_callers_context()
    {
        var exit = new PendingValueTask<bool>();
        var manager = AsyncContext.Create(_ => ValueTask.FromResult(7), (_, _) => exit.Task);
        Task with = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // enter and body complete at once: the exit is awaited in the caller's call
                with = manager.WithAsync((_, _) => Task.CompletedTask);
            },
            () => exit.SetResult(false));

        await with;
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_manager_of_an_async_disposable_resumes_after_its_disposal_without_the_callers_context()
    {
        var resource = new PendingDisposable(_caller);
        var manager = AsyncContext.Of(_ => new ValueTask<PendingDisposable>(resource));
        Task with = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () => with = manager.WithAsync((_, _) => Task.CompletedTask),
            () => resource.Disposal.SetResult(true));

        await with;
        Assert.True(resource.Disposal.Consumed);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task Entering_on_a_stack_and_disposing_it_resume_without_the_callers_context()
    {
        var manager = new PendingManager(_caller);
        var stack = new AsyncExitStack();
        Task<int> entering = Task.FromResult(0);
        Task disposing = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () => entering = stack.EnterAsync(manager).AsTask(),
            () => manager.Enter.SetResult(5),
            () =>
            {
                stack.Complete();
                disposing = stack.DisposeAsync().AsTask();
            },
            () => manager.Exit.SetResult(false));

        Assert.Equal(5, await entering);
        await disposing;
        Assert.Equal([null], manager.ExitsSeen);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_stack_closed_while_a_manager_entered_exits_it_without_the_callers_context()
    {
        var manager = new PendingManager(_caller);
        var stack = new AsyncExitStack();
        Task<int> entering = Task.FromResult(0);

        await CallerContext.RunStepsAsync(
            () => entering = stack.EnterAsync(manager).AsTask(),
            () => Assert.True(stack.DisposeAsync().AsTask().IsCompletedSuccessfully),
            () => manager.Enter.SetResult(5),
            () => manager.Exit.SetResult(false));

        await Assert.ThrowsAsync<InvalidOperationException>(() => entering);
        Assert.IsType<ScopeAbandonedException>(Assert.Single(manager.ExitsSeen));
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task Exiting_a_stack_resumes_after_each_pending_exit_without_the_callers_context()
    {
        var outer = new PendingManager(_caller);
        var inner = new PendingValueTask<bool>();
        var bodyError = new FormatException("body");
        var stack = new AsyncExitStack();
        Task<bool> exiting = Task.FromResult(false);

        await CallerContext.RunStepsAsync(
            () => _ = stack.EnterAsync(outer).AsTask(),
            () => outer.Enter.SetResult(1),
            () =>
            {
                stack.PushExit(_ =>
                {
                    _caller.MakeCurrent();
                    return inner.Task;
                });
                exiting = stack.ExitAsync(bodyError).AsTask();
            },
            () => inner.SetResult(true),
            () => outer.Exit.SetResult(false));

        Assert.True(await exiting); // the inner exit suppressed the body's exception
        Assert.Equal([null], outer.ExitsSeen);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task Disposing_a_stack_resumes_after_a_pending_disposal_without_the_callers_context()
    {
        var resource = new PendingDisposable(_caller);
        var stack = new AsyncExitStack();
        Task disposing = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                stack.Push(resource);
                disposing = stack.DisposeAsync().AsTask();
            },
            () => resource.Disposal.SetResult(true));

        await disposing;
        Assert.True(resource.Disposal.Consumed);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task RunAsync_resumes_after_the_body_and_the_exits_without_the_callers_context()
    {
        var manager = new PendingManager(_caller);
        var body = new TaskCompletionSource();
        Task run = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a caller on a UI thread: RunAsync's await of the body is made in its call
                run = AsyncExitStack.RunAsync(async (stack, ct) =>
                {
                    // The test's own awaits must not capture the context either.
                    await stack.EnterAsync(manager, ct).ConfigureAwait(false);
                    await _caller.Pending(body.Task).ConfigureAwait(false);
                });
            },
            () => manager.Enter.SetResult(1),
            body.SetResult,
            () => manager.Exit.SetResult(false));

        await run;
        Assert.Equal([null], manager.ExitsSeen);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task RunAsync_with_a_result_resumes_after_the_body_and_the_exits_without_the_callers_context()
    {
        var manager = new PendingManager(_caller);
        var body = new TaskCompletionSource<int>();
        Task<int> run = Task.FromResult(0);

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent();
                run = AsyncExitStack.RunAsync(async (stack, ct) => await stack.EnterAsync(manager, ct).ConfigureAwait(false) + await _caller.Pending(body.Task).ConfigureAwait(false));
            },
            () => manager.Enter.SetResult(1),
            () => body.SetResult(41),
            () => manager.Exit.SetResult(false));

        Assert.Equal(42, await run);
        Assert.Equal(0, _caller.Posts);
    }
}
