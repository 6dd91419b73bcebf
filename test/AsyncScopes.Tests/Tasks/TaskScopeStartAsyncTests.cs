using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Tasks;

/// <summary><see cref="TaskScope.StartAsync{TReady}"/>: start a child and wait until it says it is ready.</summary>
public sealed class TaskScopeStartAsyncTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task It_returns_the_value_passed_when_ready_and_the_child_goes_on_in_the_scope()
    {
        var scope = new TaskScope();
        var stop = NewGate();
        var served = NewGate();

        var port = await scope.StartAsync<int>(async (ready, token) =>
        {
            ready(8080); // listening
            await stop.Task;
            served.SetResult();
        }).WaitAsync(Patience);

        Assert.Equal(8080, port);
        Assert.False(served.Task.IsCompleted);
        stop.SetResult();
        await scope.JoinAsync().WaitAsync(Patience);
        Assert.True(served.Task.IsCompleted);
    }

    [Fact]
    public async Task A_failure_before_ready_is_the_callers_and_leaves_the_scope_and_its_other_children_running()
    {
        var scope = new TaskScope();
        var siblingWaiting = NewGate();
        var release = NewGate();
        var sibling = scope.Start(async token =>
        {
            siblingWaiting.SetResult();
            await release.Task;
        });
        await siblingWaiting.Task.WaitAsync(Patience);
        var failure = new InvalidOperationException("could not bind");

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(
            () => scope.StartAsync<int>((_, _) => Task.FromException(failure)).WaitAsync(Patience));

        Assert.Same(failure, thrown);
        Assert.False(scope.Token.IsCancellationRequested);
        Assert.False(sibling.IsCompleted);
        release.SetResult();
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_return_without_ready_is_an_InvalidOperationException_and_the_scope_stays_healthy()
    {
        var scope = new TaskScope();

        await Assert.ThrowsAsync<InvalidOperationException>(
            () => scope.StartAsync((_, _) => Task.CompletedTask).WaitAsync(Patience));

        await scope.JoinAsync().WaitAsync(Patience);
        Assert.Equal(ScopeCancellationReason.None, scope.CancellationReason);
    }

    [Fact]
    public async Task Calling_ready_twice_throws_in_the_child()
    {
        var scope = new TaskScope();
        var second = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);

        await scope.StartAsync((ready, _) =>
        {
            ready();
            second.SetResult(Record.Exception(ready));
            return Task.CompletedTask;
        }).WaitAsync(Patience);

        Assert.IsType<InvalidOperationException>(await second.Task.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_scope_cancelled_before_ready_cancels_StartAsync()
    {
        var scope = new TaskScope();
        var waiting = NewGate();
        var starting = scope.StartAsync<int>(async (ready, token) =>
        {
            waiting.SetResult();
            await Task.Delay(Timeout.Infinite, token);
            ready(1);
        });
        await waiting.Task.WaitAsync(Patience);

        scope.Stop();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task On_a_cancelled_scope_or_waiting_for_a_slot_it_is_cancelled_when_the_child_never_runs()
    {
        var cancelled = new TaskScope();
        cancelled.Cancel();
        var bounded = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        var busy = NewGate();
        _ = bounded.Start(async token =>
        {
            busy.SetResult();
            await WhenCancelled(token);
        });
        await busy.Task.WaitAsync(Patience);
        var waitingForSlot = bounded.StartAsync((ready, _) =>
        {
            ready();
            return Task.CompletedTask;
        });

        var onCancelled = cancelled.StartAsync((ready, _) =>
        {
            ready();
            return Task.CompletedTask;
        });
        bounded.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => onCancelled.WaitAsync(Patience));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waitingForSlot.WaitAsync(Patience));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.JoinAsync().WaitAsync(Patience));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => bounded.JoinAsync().WaitAsync(Patience));
    }

    [Fact]
    public async Task A_failure_before_ready_after_the_starter_stopped_waiting_is_the_scopes_and_not_lost()
    {
        var scope = new TaskScope();
        var waiting = NewGate();
        var failure = new InvalidOperationException("failed while cancelled, before ready");
        var starting = scope.StartAsync(async (_, token) =>
        {
            waiting.SetResult();
            await WhenCancelled(token);
            throw failure;
        });
        await waiting.Task.WaitAsync(Patience);

        scope.Stop();

        // The stop and the failure race: the failure goes to StartAsync if it was still waiting, else to the scope.
        // Either way it comes out exactly once.
        await Settled(starting, Patience);
        var join = scope.JoinAsync();
        await Settled(join, Patience);
        var surfaced = new[] { starting.Exception?.InnerException, join.Exception?.InnerException }.Count(e => ReferenceEquals(e, failure));
        Assert.Equal(1, surfaced);
        Assert.True(starting.IsCanceled || join.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_failure_after_ready_is_the_scopes()
    {
        var scope = new TaskScope();
        var fail = NewGate();
        var failure = new InvalidOperationException("after ready");

        await scope.StartAsync(async (ready, _) =>
        {
            ready();
            await fail.Task;
            throw failure;
        }).WaitAsync(Patience);
        fail.SetResult();

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task The_starters_token_cancels_the_wait_and_the_child_and_leaves_the_scope_healthy()
    {
        var scope = new TaskScope();
        using var starter = new CancellationTokenSource();
        var waiting = NewGate();
        var childToken = new TaskCompletionSource<CancellationToken>(TaskCreationOptions.RunContinuationsAsynchronously);
        var starting = scope.StartAsync<int>(
            async (ready, token) =>
            {
                childToken.SetResult(token);
                waiting.SetResult();
                await Task.Delay(Timeout.Infinite, token); // connecting, say
                ready(1);
            },
            "listener",
            starter.Token);
        await waiting.Task.WaitAsync(Patience);

        await starter.CancelAsync();

        var cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting.WaitAsync(Patience));
        Assert.Equal(starter.Token, cancelled.CancellationToken);
        Assert.True((await childToken.Task).IsCancellationRequested);
        Assert.False(scope.Token.IsCancellationRequested);
        await scope.JoinAsync().WaitAsync(Patience); // the child ended cancelled: no failure of the scope
        Assert.Equal(ScopeCancellationReason.None, scope.CancellationReason);
    }

    [Fact]
    public async Task The_starters_token_has_no_hold_on_the_child_once_it_is_ready()
    {
        var scope = new TaskScope();
        using var starter = new CancellationTokenSource();
        var stop = NewGate();
        var ended = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await scope.StartAsync(
            async (ready, token) =>
            {
                ready();
                await stop.Task;
                ended.SetResult(token.IsCancellationRequested);
            },
            cancellationToken: starter.Token).WaitAsync(Patience);

        await starter.CancelAsync();
        stop.SetResult();

        Assert.False(await ended.Task.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task The_child_still_receives_the_scopes_cancellation_with_a_starters_token()
    {
        var scope = new TaskScope();
        using var starter = new CancellationTokenSource();
        var ended = NewGate();
        await scope.StartAsync(
            async (ready, token) =>
            {
                ready();
                await WhenCancelled(token);
                ended.SetResult();
            },
            cancellationToken: starter.Token).WaitAsync(Patience);

        scope.Stop();

        await ended.Task.WaitAsync(Patience);
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_starters_token_cancelled_already_starts_nothing()
    {
        var scope = new TaskScope();
        var child = new ReadyAtOnce();

        var starting = scope.StartAsync(child.RunAsync, cancellationToken: new CancellationToken(canceled: true));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
        Assert.False(child.Ran);
    }

    [Fact]
    public async Task A_child_whose_starter_gave_up_while_it_waited_for_a_slot_never_runs()
    {
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        var busy = NewGate();
        var free = NewGate();
        _ = scope.Start(async _ =>
        {
            busy.SetResult();
            await free.Task;
        });
        await busy.Task.WaitAsync(Patience);
        using var starter = new CancellationTokenSource();
        var child = new ReadyAtOnce();
        var starting = scope.StartAsync(child.RunAsync, cancellationToken: starter.Token);

        await starter.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting.WaitAsync(Patience));
        free.SetResult();

        await scope.JoinAsync().WaitAsync(Patience);
        Assert.False(child.Ran);
    }

    [Fact]
    public async Task A_child_started_by_name_is_reported_by_it_when_it_straggles()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { StragglerTimeout = TimeSpan.FromSeconds(1), TimeProvider = time });
        var release = NewGate();
        var reported = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnStraggler(object? sender, ScopeStragglerEventArgs e)
        {
            if (ReferenceEquals(sender, scope))
            {
                reported.TrySetResult(e.ChildName);
            }
        }

        await scope.StartAsync(
            async (ready, _) =>
            {
                ready();
                await release.Task; // ignores its token
            },
            "database listener").WaitAsync(Patience);
        ScopeDiagnostics.Straggler += OnStraggler;
        try
        {
            scope.Stop();
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal("database listener", await reported.Task.WaitAsync(Patience));
        }
        finally
        {
            ScopeDiagnostics.Straggler -= OnStraggler;
            release.SetResult();
        }

        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_closed_scope_refuses_to_start()
    {
        var scope = new TaskScope();
        await scope.JoinAsync().WaitAsync(Patience);

        Assert.Throws<InvalidOperationException>(() => { _ = scope.StartAsync((_, _) => Task.CompletedTask); });
    }

    /// <summary>A child that says it is ready as soon as it runs, and tells whether it ran.</summary>
    private sealed class ReadyAtOnce
    {
        public bool Ran { get; private set; }

        public Task RunAsync(Action ready, CancellationToken token)
        {
            Ran = true;
            ready();
            return Task.CompletedTask;
        }
    }
}
