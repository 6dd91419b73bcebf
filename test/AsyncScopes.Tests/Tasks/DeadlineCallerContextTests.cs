using AsyncScopes.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Tasks;

/// <summary>
/// A deadline never resumes on a <see cref="SynchronizationContext"/> that its caller or its work left
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

    // A ConfigureAwait(false) continuation never runs inline on a thread with a context like the caller's: the end of a
    // deadline awaits with the caller's context current only when the work ended synchronously, in the caller's call.
    // Here it ends while the deadline's cancellation runs a callback on the timer's thread, so the end awaits that
    // callback from the caller's call.
    [Theory]
    [InlineData(nameof(Deadline.RunAsync))]
    [InlineData(nameof(Deadline.RunAsync) + "<T>")]
    [InlineData(nameof(Deadline.TryRunAsync))]
    public async Task A_deadline_whose_work_ended_during_its_callbacks_waits_for_them_without_the_callers_context(string overload)
    {
        using var callbackRunning = new ManualResetEventSlim();
        using var releaseCallback = new ManualResetEventSlim();
        var callbackFailure = new InvalidOperationException("a callback that ran after the work ended");
        Task firing = Task.CompletedTask;
        Task run = Task.CompletedTask;

        void Work(CancellationToken token)
        {
            token.Register(() =>
            {
                callbackRunning.Set();
                Assert.True(releaseCallback.Wait(Patience));
                throw callbackFailure;
            });
            firing = Task.Run(() => _time.Advance(Limit), CancellationToken.None); // the deadline fires on another thread
            Assert.True(callbackRunning.Wait(Patience, CancellationToken.None));
        }

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a caller on a UI thread
                run = overload switch
                {
                    nameof(Deadline.RunAsync) => Deadline.RunAsync(Limit, token => { Work(token); return Task.CompletedTask; }, timeProvider: _time),
                    nameof(Deadline.TryRunAsync) => Deadline.TryRunAsync(Limit, token => { Work(token); return Task.FromResult(1); }, timeProvider: _time),
                    _ => Deadline.RunAsync(Limit, token => { Work(token); return Task.FromResult(1); }, timeProvider: _time),
                };
            },
            releaseCallback.Set);

        await firing.WaitAsync(Patience);
        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run.WaitAsync(Patience));
        Assert.Same(callbackFailure, Assert.Single(thrown.InnerExceptions));
        Assert.Equal(0, _caller.Posts);
    }
}
