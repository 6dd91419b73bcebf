using AsyncScopes.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Tasks;

/// <summary>
/// A deadline never resumes on a <see cref="SynchronizationContext"/> that its work, or a callback on its token, left
/// current (see <see cref="CallerContext"/>): neither after the work, nor while it waits for the token's callbacks.
/// </summary>
public sealed class DeadlineCallerContextTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(1);

    private readonly CallerContext _caller = new();
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task RunAsync_resumes_after_its_work_without_the_callers_context()
    {
        var work = new TaskCompletionSource(); // its continuations run inline, in the step that completes it
        Task run = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () => run = Deadline.RunAsync(Limit, _ => _caller.Pending(work.Task), timeProvider: _time),
            work.SetResult);

        await run.WaitAsync(Patience);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task RunAsync_with_a_result_resumes_after_its_work_without_the_callers_context()
    {
        var work = new TaskCompletionSource<int>();
        Task<int> run = Task.FromResult(0);

        await CallerContext.RunStepsAsync(
            () => run = Deadline.RunAsync(Limit, _ => _caller.Pending(work.Task), timeProvider: _time),
            () => work.SetResult(5));

        Assert.Equal(5, await run.WaitAsync(Patience));
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task TryRunAsync_resumes_after_its_work_without_the_callers_context()
    {
        var work = new TaskCompletionSource<int>();
        Task<(bool Completed, int Result)> run = Task.FromResult((false, 0));

        await CallerContext.RunStepsAsync(
            () => run = Deadline.TryRunAsync(Limit, _ => _caller.Pending(work.Task), timeProvider: _time),
            () => work.SetResult(5));

        Assert.Equal((true, 5), await run.WaitAsync(Patience));
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task RunAsync_that_waits_for_the_tokens_callbacks_resumes_without_the_context_the_work_ended_in()
    {
        var work = new TaskCompletionSource();
        var callbackFailure = new InvalidOperationException("a callback that ran after the work ended");
        Task run = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () => run = Deadline.RunAsync(Limit, token => Work(work, callbackFailure, token), timeProvider: _time),
            () => _time.Advance(Limit));

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run.WaitAsync(Patience));
        Assert.Same(callbackFailure, Assert.Single(thrown.InnerExceptions));
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task RunAsync_with_a_result_that_waits_for_the_tokens_callbacks_resumes_without_the_context_the_work_ended_in()
    {
        var work = new TaskCompletionSource();
        var callbackFailure = new InvalidOperationException("a callback that ran after the work ended");
        Task<int> run = Task.FromResult(0);

        await CallerContext.RunStepsAsync(
            () => run = Deadline.RunAsync(Limit, token => WorkWithResult(work, callbackFailure, token), timeProvider: _time),
            () => _time.Advance(Limit));

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run.WaitAsync(Patience));
        Assert.Same(callbackFailure, Assert.Single(thrown.InnerExceptions));
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task TryRunAsync_that_waits_for_the_tokens_callbacks_resumes_without_the_context_the_work_ended_in()
    {
        var work = new TaskCompletionSource();
        var callbackFailure = new InvalidOperationException("a callback that ran after the work ended");
        Task<(bool Completed, int Result)> run = Task.FromResult((false, 0));

        await CallerContext.RunStepsAsync(
            () => run = Deadline.TryRunAsync(Limit, token => WorkWithResult(work, callbackFailure, token), timeProvider: _time),
            () => _time.Advance(Limit));

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run.WaitAsync(Patience));
        Assert.Same(callbackFailure, Assert.Single(thrown.InnerExceptions));
        Assert.Equal(0, _caller.Posts);
    }

    // Work that ends inside the deadline's cancellation, on the timer's thread, with the caller's context current, while
    // a callback registered earlier (callbacks run last registered first) has still to run and throw: the deadline's
    // end waits for that callback with the caller's context current.
    private Task Work(TaskCompletionSource work, Exception callbackFailure, CancellationToken token)
    {
        token.Register(() => throw callbackFailure);
        token.Register(() =>
        {
            _caller.MakeCurrent();
            work.SetResult();
        });
        return work.Task;
    }

    private async Task<int> WorkWithResult(TaskCompletionSource work, Exception callbackFailure, CancellationToken token)
    {
        await Work(work, callbackFailure, token).ConfigureAwait(false);
        return 1;
    }
}
