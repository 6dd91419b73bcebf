using AsyncScopes.Tests.Support;

namespace AsyncScopes.Tests.Tasks;

/// <summary>
/// A scope never resumes on a <see cref="SynchronizationContext"/> that its body, a child, a contender of a race or a
/// loser's disposal left current (see <see cref="CallerContext"/>): the work that completes them resumes where it
/// completed.
/// </summary>
public sealed class TaskScopeCallerContextTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly CallerContext _caller = new();

    [Fact]
    public async Task RunAsync_resumes_after_its_body_without_the_callers_context()
    {
        var body = new TaskCompletionSource(); // its continuations run inline, in the step that completes it
        Task run = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () => run = TaskScope.RunAsync(_ => _caller.Pending(body.Task)),
            body.SetResult);

        await run.WaitAsync(Patience);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task RunAsync_with_a_result_resumes_after_its_body_without_the_callers_context()
    {
        var body = new TaskCompletionSource<int>();
        Task<int> run = Task.FromResult(0);

        await CallerContext.RunStepsAsync(
            () => run = TaskScope.RunAsync(_ => _caller.Pending(body.Task)),
            () => body.SetResult(7));

        Assert.Equal(7, await run.WaitAsync(Patience));
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_child_resumes_after_its_work_without_the_context_it_left_current()
    {
        var scope = new TaskScope();
        var work = new TaskCompletionSource();
        var started = NewGate();
        var child = scope.Start(_ =>
        {
            started.SetResult();
            return _caller.Pending(work.Task);
        });
        await started.Task.WaitAsync(Patience);

        await CallerContext.RunStepsAsync(work.SetResult);

        await child.WaitAsync(Patience);
        await scope.JoinAsync().WaitAsync(Patience);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_child_with_a_result_resumes_after_its_work_without_the_context_it_left_current()
    {
        var scope = new TaskScope();
        var work = new TaskCompletionSource<int>();
        var started = NewGate();
        var child = scope.Start(_ =>
        {
            started.SetResult();
            return _caller.Pending(work.Task);
        });
        await started.Task.WaitAsync(Patience);

        await CallerContext.RunStepsAsync(() => work.SetResult(3));

        Assert.Equal(3, await child.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_race_resumes_after_its_contenders_and_a_losers_disposal_without_the_context_they_left_current()
    {
        var winner = new TaskCompletionSource<Resource>();
        var loser = new TaskCompletionSource<Resource>();
        var started = new[] { NewGate(), NewGate() };
        var won = NewGate();
        var loserValue = new Resource(_caller);
        var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<Resource>>[]
        {
            _ =>
            {
                started[0].SetResult();
                return _caller.Pending(winner.Task);
            },
            token =>
            {
                _ = token.Register(won.SetResult); // cancelled once the winner is known
                started[1].SetResult();
                return _caller.Pending(loser.Task); // ignores the cancellation: succeeds after the winner
            },
        });
        await Task.WhenAll(started.Select(gate => gate.Task)).WaitAsync(Patience);
        var winnerValue = new Resource(_caller);

        // The started gates open before the race awaits what a contender returned: the winner may still be on its
        // way to that await. Completing the loser only once the winner has won keeps the loser from winning first.
        await CallerContext.RunStepsAsync(() => winner.SetResult(winnerValue));
        await won.Task.WaitAsync(Patience);
        await CallerContext.RunStepsAsync(
            () => loser.SetResult(loserValue),
            loserValue.Disposal.SetResult);

        Assert.Same(winnerValue, await race.WaitAsync(Patience));
        Assert.Equal(1, loserValue.Disposals);
        Assert.Equal(0, _caller.Posts);
    }

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Its disposal is pending until the test completes Disposal, and leaves the caller's context current.
    private sealed class Resource(CallerContext caller) : IAsyncDisposable
    {
        private int _disposals;

        public TaskCompletionSource Disposal { get; } = new();

        public int Disposals => Volatile.Read(ref _disposals);

        public ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref _disposals);
            return new ValueTask(caller.Pending(Disposal.Task));
        }
    }
}
