using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Tasks;

public sealed class TaskScopeRunAsyncTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_body_failure_cancels_the_children_and_comes_before_their_failures()
    {
        var bodyFailure = new InvalidOperationException("the body failed");
        var childFailure = new FormatException("the child failed once cancelled");
        Task? failingChild = null;
        Task? cancelledChild = null;

        var run = TaskScope.RunAsync(async scope =>
        {
            var failingWaiting = NewGate();
            var cancelledWaiting = NewGate();
            failingChild = scope.Start(async token =>
            {
                failingWaiting.SetResult();
                await WhenCancelled(token);
                throw childFailure;
            });
            cancelledChild = scope.Start(async token =>
            {
                cancelledWaiting.SetResult();
                await Task.Delay(Timeout.Infinite, token);
            });
            await Task.WhenAll(failingWaiting.Task, cancelledWaiting.Task);
            throw bodyFailure;
        });

        await Settled(run);
        Assert.True(run.IsFaulted);
        Assert.Equal(new Exception[] { bodyFailure, childFailure }, run.Exception!.InnerExceptions);
        Assert.NotNull(failingChild);
        Assert.NotNull(cancelledChild);
        Assert.True(failingChild.IsFaulted);
        Assert.True(cancelledChild.IsCanceled);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => run);
        Assert.Same(bodyFailure, thrown);
    }

    [Fact]
    public async Task A_body_failure_keeps_a_child_failure_that_is_a_TimeoutException()
    {
        // A child's own TimeoutException (a Deadline.RunAsync inside it, say) is a failure like any other: only the
        // scope's own timeout is not a failure of a child.
        var bodyFailure = new InvalidOperationException("the body failed");
        var childFailure = new TimeoutException("the child's own operation timed out");

        var run = TaskScope.RunAsync(async scope =>
        {
            Task child = scope.Start(_ => Task.FromException(childFailure));
            await child.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw bodyFailure;
        });

        await Settled(run);
        Assert.True(run.IsFaulted);
        Assert.Equal(new Exception[] { bodyFailure, childFailure }, run.Exception!.InnerExceptions);
    }

    [Fact]
    public async Task A_body_failure_after_the_scope_timed_out_is_the_only_failure()
    {
        var time = new FakeTimeProvider();
        var bodyFailure = new InvalidOperationException("the body failed after the deadline");
        var childWaiting = NewGate();

        var run = TaskScope.RunAsync(async scope =>
        {
            _ = scope.Start(async token =>
            {
                childWaiting.SetResult();
                await Task.Delay(Timeout.Infinite, token);
            });
            await childWaiting.Task;
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.True(scope.Token.IsCancellationRequested);
            throw bodyFailure;
        }, options: new TaskScopeOptions { Timeout = TimeSpan.FromSeconds(1), TimeProvider = time });

        await Settled(run);
        Assert.True(run.IsFaulted);
        Assert.Same(bodyFailure, Assert.Single(run.Exception!.InnerExceptions));
    }

    [Fact]
    public async Task A_body_that_returns_joins_the_children_and_its_result_is_the_result()
    {
        var childGate = NewGate();
        var bodyReturning = NewGate();
        Task? child = null;

        var run = TaskScope.RunAsync(async scope =>
        {
            child = scope.Start(async _ => await childGate.Task);
            await Task.Yield();
            bodyReturning.SetResult();
            return 42;
        });

        await bodyReturning.Task.WaitAsync(Patience);
        Assert.False(run.IsCompleted);
        Assert.NotNull(child);
        Assert.False(child.IsCompleted);
        childGate.SetResult();
        Assert.Equal(42, await run.WaitAsync(Patience));
        Assert.True(child.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_body_without_result_that_returns_joins_the_children()
    {
        var childGate = NewGate();
        var bodyReturning = NewGate();
        Task? child = null;

        var run = TaskScope.RunAsync(async scope =>
        {
            child = scope.Start(async _ => await childGate.Task);
            await Task.Yield();
            bodyReturning.SetResult();
        });

        await bodyReturning.Task.WaitAsync(Patience);
        Assert.False(run.IsCompleted);
        childGate.SetResult();
        await run.WaitAsync(Patience);
        Assert.NotNull(child);
        Assert.True(child.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_body_ending_in_OperationCanceledException_while_the_scope_is_cancelled_gives_a_cancelled_task()
    {
        CancellationToken scopeToken = default;
        var run = TaskScope.RunAsync(async scope =>
        {
            scopeToken = scope.Token;
            await Task.Yield();
            scope.Cancel();
            scope.Token.ThrowIfCancellationRequested();
        });

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Patience));
        Assert.True(run.IsCanceled);
        Assert.False(run.IsFaulted);
        Assert.Equal(scopeToken, thrown.CancellationToken);
    }

    [Fact]
    public async Task A_run_cancelled_by_the_outer_token_is_cancelled_with_that_token()
    {
        using var outer = new CancellationTokenSource();
        var bodyWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = TaskScope.RunAsync(
            async scope =>
            {
                var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                using (scope.Token.Register(() => cancelled.SetResult()))
                {
                    bodyWaiting.SetResult();
                    await cancelled.Task;
                }

                scope.Token.ThrowIfCancellationRequested();
            },
            outer.Token);
        await bodyWaiting.Task.WaitAsync(Patience);

        outer.Cancel();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Patience));
        Assert.True(run.IsCanceled);
        Assert.Equal(outer.Token, thrown.CancellationToken);
    }

    [Fact]
    public async Task A_body_with_result_ending_in_OperationCanceledException_while_the_scope_is_cancelled_gives_a_cancelled_task()
    {
        var run = TaskScope.RunAsync<int>(async scope =>
        {
            await Task.Yield();
            scope.Cancel();
            scope.Token.ThrowIfCancellationRequested();
            return 1;
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Patience));
        Assert.True(run.IsCanceled);
        Assert.False(run.IsFaulted);
    }

    [Fact]
    public async Task An_OperationCanceledException_from_an_unrelated_token_in_the_body_is_a_failure()
    {
        using var unrelated = new CancellationTokenSource();
        unrelated.Cancel();

        var run = TaskScope.RunAsync(async scope =>
        {
            await Task.Yield();
            unrelated.Token.ThrowIfCancellationRequested();
        });

        await Settled(run);
        Assert.True(run.IsFaulted);
        var failure = Assert.IsAssignableFrom<OperationCanceledException>(Assert.Single(run.Exception!.InnerExceptions));
        Assert.Equal(unrelated.Token, failure.CancellationToken);
    }

    [Fact]
    public void A_null_body_throws_ArgumentNullException()
    {
        var withoutResult = Assert.Throws<ArgumentNullException>(() => { _ = TaskScope.RunAsync((Func<TaskScope, Task>)null!); });
        var withResult = Assert.Throws<ArgumentNullException>(() => { _ = TaskScope.RunAsync((Func<TaskScope, Task<int>>)null!); });

        Assert.Equal("body", withoutResult.ParamName);
        Assert.Equal("body", withResult.ParamName);
    }

    [Fact]
    public void Invalid_options_throw_at_the_call_and_the_body_does_not_run()
    {
        bool ran = false;
        var options = new TaskScopeOptions { MaxConcurrency = -1 };

        var withoutResult = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = TaskScope.RunAsync(_ => Run(), options: options); });
        var withResult = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = TaskScope.RunAsync(async _ => { await Run(); return 1; }, options: options); });

        Assert.Equal(nameof(TaskScopeOptions.MaxConcurrency), withoutResult.ParamName);
        Assert.Equal(nameof(TaskScopeOptions.MaxConcurrency), withResult.ParamName);
        Assert.False(ran);

        Task Run()
        {
            ran = true;
            return Task.CompletedTask;
        }
    }

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Completes when the token is cancelled, off the thread that cancelled.
    private static async Task WhenCancelled(CancellationToken token)
    {
        var cancelled = NewGate();
        using (token.Register(() => cancelled.TrySetResult()))
        {
            await cancelled.Task;
        }
    }

    // Waits for the task to complete in any way, failing the test if it does not within the patience.
    private static async Task Settled(Task task)
    {
        await task.WaitAsync(Patience).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        Assert.True(task.IsCompleted, $"The task did not complete within {Patience}.");
    }

    [Fact]
    public async Task A_body_that_rethrows_a_child_failure_lists_it_once_first()
    {
        var childFailure = new InvalidOperationException("child");
        var run = TaskScope.RunAsync(async scope =>
        {
            Task child = scope.Start(_ => Task.FromException(childFailure));
            await child; // the natural fan-in: the body fails with the child's exception
        }, options: new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll });

        await Assert.ThrowsAsync<InvalidOperationException>(() => run.WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal([childFailure], run.Exception!.InnerExceptions);
    }
}
