using System.Threading.RateLimiting;
using AsyncScopes.Tests.Support;
using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Tasks;

/// <summary><see cref="TaskScopeOptions.Limiter"/>: a limit shared across scopes, one permit per child.</summary>
public sealed class TaskScopeLimiterTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_child_runs_only_once_it_has_a_permit_of_the_shared_limiter()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 10);
        using var held = limiter.AttemptAcquire(); // another scope's child, say
        var scope = new TaskScope(new TaskScopeOptions { Limiter = limiter });
        var ran = NewGate();
        _ = scope.Start(_ =>
        {
            ran.SetResult();
            return Task.CompletedTask;
        });

        await limiter.Requested(1).WaitAsync(Patience);
        Assert.False(ran.Task.IsCompleted);
        held.Dispose();

        await ran.Task.WaitAsync(Patience);
        await scope.JoinAsync().WaitAsync(Patience);
        Assert.Equal(1, limiter.Available);
    }

    [Fact]
    public async Task Two_scopes_sharing_it_run_no_more_children_at_once_than_it_has_permits()
    {
        await using var limiter = new ObservedLimiter(permits: 2, queueLimit: 10);
        var release = NewGate();
        var twoIn = NewGate();
        var entered = 0;
        async Task ChildAsync(CancellationToken token)
        {
            if (Interlocked.Increment(ref entered) == 2)
            {
                twoIn.SetResult();
            }

            await release.Task;
        }

        var first = new TaskScope(new TaskScopeOptions { Limiter = limiter });
        var second = new TaskScope(new TaskScopeOptions { Limiter = limiter });
        _ = first.Start(ChildAsync);
        _ = first.Start(ChildAsync);
        _ = second.Start(ChildAsync);
        await limiter.Requested(3).WaitAsync(Patience);
        await twoIn.Task.WaitAsync(Patience);

        Assert.Equal(2, Volatile.Read(ref entered)); // the third waits for a permit, whichever scope it is in
        Assert.Equal(0, limiter.Available);
        release.SetResult();
        await Task.WhenAll(first.JoinAsync(), second.JoinAsync()).WaitAsync(Patience);
        Assert.Equal(3, entered);
        Assert.Equal(2, limiter.Available);
    }

    [Fact]
    public async Task A_child_cancelled_while_it_waits_never_runs_and_loses_no_permit()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 10);
        var held = limiter.AttemptAcquire();
        var scope = new TaskScope(new TaskScopeOptions { Limiter = limiter });
        var ran = false;
        var child = scope.Start(_ =>
        {
            ran = true;
            return Task.CompletedTask;
        });
        await limiter.Requested(1).WaitAsync(Patience);

        scope.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => child.WaitAsync(Patience));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scope.JoinAsync().WaitAsync(Patience));
        held.Dispose();
        Assert.False(ran);
        Assert.Equal(1, limiter.Available);
        using var next = limiter.AttemptAcquire();
        Assert.True(next.IsAcquired);
    }

    [Fact]
    public async Task The_permit_goes_back_before_the_childs_task_completes_whatever_the_child_did()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 10);
        var scope = new TaskScope(new TaskScopeOptions { Limiter = limiter, FailureMode = TaskScopeFailureMode.WaitForAll });
        var failure = new InvalidOperationException("failed");

        await scope.Start(_ => Task.CompletedTask).WaitAsync(Patience);
        Assert.Equal(1, limiter.Available);
        await Assert.ThrowsAsync<InvalidOperationException>(() => scope.Start(_ => Task.FromException(failure)).WaitAsync(Patience));
        Assert.Equal(1, limiter.Available);
        await Assert.ThrowsAsync<InvalidOperationException>(() => scope.Start<int>(_ => throw failure).WaitAsync(Patience));
        Assert.Equal(1, limiter.Available);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task A_permit_the_limiter_refuses_fails_the_child_without_running_it()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 0);
        using var held = limiter.AttemptAcquire();
        var scope = new TaskScope(new TaskScopeOptions { Limiter = limiter, Name = "requests" });
        var ran = false;

        var child = scope.Start(_ =>
        {
            ran = true;
            return Task.CompletedTask;
        });

        var rejected = await Assert.ThrowsAsync<PermitRejectedException>(() => child.WaitAsync(Patience));
        Assert.Contains("'requests'", rejected.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<PermitRejectedException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.False(ran);
    }

    [Fact]
    public async Task A_refusal_carries_the_limiters_retry_after()
    {
        await using var limiter = new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
        {
            PermitLimit = 1,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = false,
        });
        using var spent = limiter.AttemptAcquire();
        var scope = new TaskScope(new TaskScopeOptions { Limiter = limiter });

        var rejected = await Assert.ThrowsAsync<PermitRejectedException>(() => scope.Start(_ => Task.CompletedTask).WaitAsync(Patience));

        Assert.Equal(TimeSpan.FromMinutes(1), rejected.RetryAfter);
        await Assert.ThrowsAsync<PermitRejectedException>(() => scope.JoinAsync().WaitAsync(Patience));
    }
}
