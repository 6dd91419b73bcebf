using Microsoft.Extensions.Time.Testing;
using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Tasks;

/// <summary>Stopping a scope on purpose: <see cref="TaskScope.Stop()"/>, the two-phase <see cref="TaskScope.Stop(TimeSpan)"/>
/// with <see cref="TaskScope.Stopping"/>, the quiet timeout, and <see cref="TaskScope.CancellationReason"/>.</summary>
public sealed class TaskScopeStopTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);

    // --- Stop(): quiet ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task Stop_cancels_the_children_and_the_join_completes_normally()
    {
        var scope = new TaskScope();
        var child = await StartUntilCancelledAsync(scope, Patience);

        scope.Stop();

        await scope.JoinAsync().WaitAsync(Patience);
        Assert.True(child.IsCanceled);
        Assert.True(scope.Token.IsCancellationRequested);
        Assert.Equal(ScopeCancellationReason.Stop, scope.CancellationReason);
    }

    [Fact]
    public async Task Stop_with_a_child_that_fails_while_stopping_still_faults()
    {
        var scope = new TaskScope();
        var waiting = NewGate();
        var failure = new InvalidOperationException("failed while stopping");
        _ = scope.Start(async token =>
        {
            waiting.SetResult();
            await WhenCancelled(token);
            throw failure;
        });
        await waiting.Task.WaitAsync(Patience);

        scope.Stop();

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task A_failure_before_the_stop_decides_the_outcome()
    {
        var scope = new TaskScope();
        var failure = new InvalidOperationException("first");
        await Settled(scope.Start(_ => Task.FromException(failure)));

        scope.Stop();

        Assert.Equal(ScopeCancellationReason.Failure, scope.CancellationReason);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task Cancel_before_Stop_keeps_the_join_cancelled()
    {
        var scope = new TaskScope();
        scope.Cancel();
        scope.Stop();

        Assert.Equal(ScopeCancellationReason.Cancel, scope.CancellationReason);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scope.JoinAsync().WaitAsync(Patience));
    }

    [Fact]
    public async Task A_cancellation_from_outside_still_propagates_after_a_stop()
    {
        using var outer = new CancellationTokenSource();
        var scope = new TaskScope(outer.Token);
        var release = NewGate();
        var waiting = NewGate();
        _ = scope.Start(async _ =>
        {
            waiting.SetResult();
            await release.Task; // ignores the token until the outer cancellation happened
        });
        await waiting.Task.WaitAsync(Patience);
        scope.Stop();
        var join = scope.JoinAsync();

        outer.Cancel();
        release.SetResult();

        var cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => join.WaitAsync(Patience));
        Assert.Equal(outer.Token, cancelled.CancellationToken);
    }

    [Fact]
    public async Task RunAsync_returns_the_result_of_a_body_that_finished_and_default_for_one_that_was_stopped()
    {
        var finished = await TaskScope.RunAsync(scope =>
        {
            scope.Stop();
            return Task.FromResult(42);
        }).WaitAsync(Patience);

        var stopped = await TaskScope.RunAsync(async scope =>
        {
            scope.Stop();
            await Task.Delay(Timeout.Infinite, scope.Token);
            return 42;
        }).WaitAsync(Patience);

        Assert.Equal(42, finished);
        Assert.Equal(0, stopped);
    }

    [Fact]
    public async Task A_timeout_that_ends_quietly_completes_the_join_normally()
    {
        var time = new FakeTimeProvider();
        var options = new TaskScopeOptions { Timeout = TimeSpan.FromSeconds(5), TimeoutEndsQuietly = true, TimeProvider = time };

        var result = TaskScope.RunAsync(
            async scope =>
            {
                await Task.Delay(Timeout.Infinite, scope.Token);
                return "finished";
            },
            options: options);
        time.Advance(TimeSpan.FromSeconds(5));

        Assert.Null(await result.WaitAsync(Patience));
    }

    [Fact]
    public async Task A_timeout_that_does_not_end_quietly_still_throws()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { Timeout = TimeSpan.FromSeconds(5), TimeProvider = time });

        time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(ScopeCancellationReason.Timeout, scope.CancellationReason);
        await Assert.ThrowsAsync<TimeoutException>(() => scope.JoinAsync().WaitAsync(Patience));
    }

    // --- Stop(grace): two phases ---------------------------------------------------------------------------------

    [Fact]
    public async Task Stopping_fires_at_once_and_a_child_that_finishes_during_the_grace_is_not_cancelled()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { TimeProvider = time });
        var stopping = scope.Stopping;
        var waiting = NewGate();
        var child = scope.Start(async _ =>
        {
            waiting.SetResult();
            await WhenCancelled(stopping); // finishes its unit of work on the first phase
            return "drained";
        });
        await waiting.Task.WaitAsync(Patience);

        scope.Stop(Grace);

        Assert.Equal("drained", await child.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
        Assert.True(stopping.IsCancellationRequested);
        Assert.False(scope.Token.IsCancellationRequested);
        Assert.Equal(ScopeCancellationReason.Stop, scope.CancellationReason);

        time.Advance(Grace); // the grace's timer went with the scope
        Assert.False(scope.Token.IsCancellationRequested);
    }

    [Fact]
    public async Task Token_fires_when_the_grace_ends_and_not_before()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { TimeProvider = time });
        var waiting = NewGate();
        var child = scope.Start(async token =>
        {
            waiting.SetResult();
            await Task.Delay(Timeout.Infinite, token); // ignores Stopping
        });
        await waiting.Task.WaitAsync(Patience);

        scope.Stop(Grace);
        time.Advance(Grace - TimeSpan.FromTicks(1));
        Assert.True(scope.Stopping.IsCancellationRequested);
        Assert.False(scope.Token.IsCancellationRequested);

        time.Advance(TimeSpan.FromTicks(1));

        await scope.JoinAsync().WaitAsync(Patience);
        Assert.True(scope.Token.IsCancellationRequested);
        Assert.True(child.IsCanceled);
    }

    [Fact]
    public async Task A_failure_during_the_grace_fires_Token_at_once_and_faults_the_join()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { TimeProvider = time });
        var sibling = await StartUntilCancelledAsync(scope, Patience);
        scope.Stop(Grace);
        var failure = new InvalidOperationException("failed while draining");

        _ = scope.Start(_ => Task.FromException(failure));

        await Settled(sibling);
        Assert.True(sibling.IsCanceled);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task Cancel_during_the_grace_fires_Token_at_once_and_the_stop_still_decides_the_outcome()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { TimeProvider = time });
        scope.Stop(Grace);

        scope.Cancel();

        Assert.True(scope.Token.IsCancellationRequested);
        Assert.Equal(ScopeCancellationReason.Stop, scope.CancellationReason);
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_child_that_ends_with_a_cancellation_of_Stopping_is_cancelled_not_failed()
    {
        var scope = new TaskScope();
        var waiting = NewGate();
        var child = scope.Start(async _ =>
        {
            var stopping = scope.Stopping;
            waiting.SetResult();
            await Task.Delay(Timeout.Infinite, stopping);
        });
        await waiting.Task.WaitAsync(Patience);

        scope.Stop(Timeout.InfiniteTimeSpan);

        await scope.JoinAsync().WaitAsync(Patience);
        Assert.True(child.IsCanceled);
        Assert.False(scope.Token.IsCancellationRequested);
    }

    [Fact]
    public async Task Stopping_fires_with_Token_when_the_scope_is_cancelled_without_a_stop()
    {
        var scope = new TaskScope();
        var stopping = scope.Stopping;

        scope.Cancel();

        Assert.True(stopping.IsCancellationRequested);
        Assert.True(scope.Stopping.IsCancellationRequested);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scope.JoinAsync().WaitAsync(Patience));
    }

    [Fact]
    public async Task Stopping_read_first_after_a_stop_is_already_cancelled()
    {
        var scope = new TaskScope();
        scope.Stop(Timeout.InfiniteTimeSpan);

        Assert.True(scope.Stopping.IsCancellationRequested);
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_callback_on_Stopping_that_throws_is_a_failure_of_the_scope()
    {
        var scope = new TaskScope();
        var failure = new InvalidOperationException("callback");
        scope.Stopping.Register(() => throw failure);

        scope.Stop(Grace);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task A_negative_grace_is_rejected()
    {
        await using var scope = new TaskScope();

        Assert.Throws<ArgumentOutOfRangeException>(() => scope.Stop(TimeSpan.FromSeconds(-1)));
        Assert.Equal(ScopeCancellationReason.None, scope.CancellationReason);
    }

    [Fact]
    public async Task Stopping_has_fired_when_the_callbacks_of_Token_run()
    {
        var scope = new TaskScope();
        var stopping = scope.Stopping;
        var seenByTokenCallback = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        scope.Token.Register(() => seenByTokenCallback.TrySetResult(stopping.IsCancellationRequested));

        scope.Cancel();

        Assert.True(await seenByTokenCallback.Task.WaitAsync(Patience));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scope.JoinAsync().WaitAsync(Patience));
    }

    [Fact]
    public async Task Stop_with_a_grace_racing_Cancel_and_reads_of_Stopping_never_throws_and_always_ends()
    {
        // Bounded: each round races the three on the thread pool from one gate; whatever the order, the calls return,
        // Stopping and Token end cancelled, and the join completes (quietly when Stop came first).
        for (var round = 0; round < 500; round++)
        {
            var scope = new TaskScope();
            var start = NewGate();
            var stop = Task.Run(async () => { await start.Task; scope.Stop(TimeSpan.FromHours(1)); });
            var cancel = Task.Run(async () => { await start.Task; scope.Cancel(); });
            var read = Task.Run(async () => { await start.Task; return scope.Stopping; });

            start.SetResult();
            await Task.WhenAll(stop, cancel, read).WaitAsync(Patience);

            Assert.True((await read).IsCancellationRequested);
            Assert.True(scope.Token.IsCancellationRequested);
            await Settled(scope.JoinAsync());
            Assert.Equal(scope.CancellationReason == ScopeCancellationReason.Stop, scope.JoinAsync().IsCompletedSuccessfully);
        }
    }

    // --- CancellationReason ----------------------------------------------------------------------------------------

    [Fact]
    public async Task The_reason_names_the_outer_token_and_disposal()
    {
        using var outer = new CancellationTokenSource();
        var byOuter = new TaskScope(outer.Token);
        var byDisposal = new TaskScope();

        outer.Cancel();
        await byDisposal.DisposeAsync();

        Assert.Equal(ScopeCancellationReason.Outer, byOuter.CancellationReason);
        Assert.Equal(ScopeCancellationReason.Disposed, byDisposal.CancellationReason);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => byOuter.JoinAsync().WaitAsync(Patience));
    }

    [Fact]
    public async Task A_scope_nobody_stopped_has_no_reason()
    {
        var scope = new TaskScope();
        await scope.Start(_ => Task.CompletedTask).WaitAsync(Patience);

        await scope.JoinAsync().WaitAsync(Patience);

        Assert.Equal(ScopeCancellationReason.None, scope.CancellationReason);
    }

    private static Task Settled(Task task) => Support.Gates.Settled(task, Patience);
}
