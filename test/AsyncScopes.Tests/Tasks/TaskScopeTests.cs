using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;
using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Tasks;

public sealed class TaskScopeTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    private readonly AsyncLocal<string?> _ambient = new();

    // --- Failures -------------------------------------------------------------------------------------------------

    [Fact]
    public async Task First_failure_cancels_the_siblings()
    {
        var scope = new TaskScope();
        var sibling = await StartUntilCancelledAsync(scope, Patience);
        var failure = new InvalidOperationException("first failure");

        _ = scope.Start(_ => Task.FromException(failure));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sibling.WaitAsync(Patience));
        Assert.True(sibling.IsCanceled);
        Assert.True(scope.Token.IsCancellationRequested);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task The_scope_is_cancelled_before_the_failed_child_task_completes()
    {
        // So whoever awaits a failed child (the natural fan-in) finds the siblings already told to stop, and a Start
        // of theirs refused.
        var scope = new TaskScope();
        var failGate = NewGate();
        var failure = new InvalidOperationException("failed");
        var child = scope.Start(async _ =>
        {
            await failGate.Task;
            throw failure;
        });
        bool? childCompletedAtCancellation = null;
        using var registration = scope.Token.Register(() => childCompletedAtCancellation = child.IsCompleted);

        failGate.SetResult();
        await Assert.ThrowsAsync<InvalidOperationException>(() => child.WaitAsync(Patience));

        Assert.True(scope.Token.IsCancellationRequested);
        Assert.False(childCompletedAtCancellation);
        var ran = false;
        var late = scope.Start(_ =>
        {
            Volatile.Write(ref ran, true);
            return Task.CompletedTask;
        });
        Assert.True(late.IsCanceled);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
        Assert.False(Volatile.Read(ref ran));
    }

    [Fact]
    public async Task WaitForAll_lets_the_siblings_finish_after_a_failure()
    {
        var scope = new TaskScope(new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll });
        var siblingGate = NewGate();
        var sibling = scope.Start(async token =>
        {
            await siblingGate.Task;
            return token.IsCancellationRequested;
        });
        var failure = new InvalidOperationException("a failure that must not stop the sibling");
        var failed = scope.Start(_ => Task.FromException(failure));
        await Assert.ThrowsAsync<InvalidOperationException>(() => failed.WaitAsync(Patience));

        siblingGate.SetResult();

        var siblingSawCancellation = await sibling.WaitAsync(Patience);
        Assert.True(sibling.IsCompletedSuccessfully);
        Assert.False(siblingSawCancellation);
        Assert.False(scope.Token.IsCancellationRequested);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task JoinAsync_faults_with_all_failures_root_cause_first()
    {
        var scope = new TaskScope();
        var first = new InvalidOperationException("root cause");
        var second = new FormatException("failed while being cancelled by the root cause");
        await FailTwiceInOrder(scope, first, second);

        var join = scope.JoinAsync();
        await Settled(join);

        Assert.True(join.IsFaulted);
        Assert.Equal(new Exception[] { first, second }, join.Exception!.InnerExceptions);
    }

    [Fact]
    public async Task Awaiting_JoinAsync_rethrows_the_root_cause()
    {
        var scope = new TaskScope();
        var first = new InvalidOperationException("root cause");
        var second = new FormatException("failed while being cancelled by the root cause");
        await FailTwiceInOrder(scope, first, second);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(async () => await scope.JoinAsync().WaitAsync(Patience));

        Assert.Same(first, thrown);
    }

    // --- Cancellation versus failure ------------------------------------------------------------------------------

    [Fact]
    public async Task A_child_ending_in_OperationCanceledException_while_the_scope_is_cancelled_is_cancelled_not_failed()
    {
        var scope = new TaskScope();
        var waiting = NewGate();
        var child = scope.Start(async token =>
        {
            waiting.SetResult();
            await WhenCancelled(token);
            token.ThrowIfCancellationRequested();
        });
        await waiting.Task.WaitAsync(Patience);

        scope.Cancel();

        await Settled(child);
        Assert.True(child.IsCanceled);
        var join = scope.JoinAsync();
        await Settled(join);
        Assert.False(join.IsFaulted);
        Assert.True(join.IsCanceled);
    }

    [Fact]
    public async Task An_OperationCanceledException_from_an_unrelated_token_is_a_failure()
    {
        using var unrelated = new CancellationTokenSource();
        unrelated.Cancel();
        var scope = new TaskScope();

        var child = scope.Start(async _ =>
        {
            await Task.Yield();
            unrelated.Token.ThrowIfCancellationRequested();
        });

        await Settled(child);
        Assert.True(child.IsFaulted);
        var childFailure = Assert.IsAssignableFrom<OperationCanceledException>(child.Exception!.InnerException);
        Assert.Equal(unrelated.Token, childFailure.CancellationToken);
        var join = scope.JoinAsync();
        await Settled(join);
        Assert.True(join.IsFaulted);
        Assert.Same(childFailure, Assert.Single(join.Exception!.InnerExceptions));
    }

    // --- Start ----------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Start_never_blocks_on_work_that_blocks_before_its_first_await()
    {
        using var gate = new ManualResetEventSlim();
        var scope = new TaskScope();
        Task<bool> child;
        try
        {
            // Blocks its thread until the test opens the gate, which the test does only once Start has returned.
            child = scope.Start(async _ =>
            {
                var opened = gate.Wait(Patience, CancellationToken.None);
                await Task.Yield();
                return opened;
            });

            Assert.False(child.IsCompleted);
        }
        finally
        {
            gate.Set();
        }

        Assert.True(await child.WaitAsync(Patience), "The work timed out waiting for the gate: Start ran it on the caller's thread.");
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task Start_never_throws_a_synchronous_throw_of_the_work_but_returns_a_faulted_task()
    {
        var scope = new TaskScope();
        var failure = new InvalidOperationException("thrown before the work returned a task");
        Task? child = null;

        var startException = Record.Exception(() => { child = scope.Start(_ => throw failure); });

        Assert.Null(startException);
        Assert.NotNull(child);
        await Settled(child);
        Assert.True(child.IsFaulted);
        Assert.Same(failure, child.Exception!.InnerException);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task Start_with_a_result_never_throws_a_synchronous_throw_of_the_work_but_returns_a_faulted_task()
    {
        var scope = new TaskScope();
        var failure = new InvalidOperationException("thrown before the work returned a task");
        Task<int>? child = null;

        var startException = Record.Exception(() => { child = scope.Start<int>(_ => throw failure); });

        Assert.Null(startException);
        Assert.NotNull(child);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => child.WaitAsync(Patience));
        Assert.Same(failure, thrown);
        Assert.True(child.IsFaulted);
        var joinThrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, joinThrown);
    }

    [Fact]
    public async Task Start_during_the_join_is_joined_too()
    {
        var scope = new TaskScope();
        var childGate = NewGate();
        var grandchildGate = NewGate();
        Task? grandchild = null;
        var child = scope.Start(async _ =>
        {
            await childGate.Task;
            grandchild = scope.Start(async _ => await grandchildGate.Task);
        });

        var join = scope.JoinAsync();
        Assert.False(join.IsCompleted);
        childGate.SetResult();
        await child.WaitAsync(Patience);

        Assert.NotNull(grandchild);
        Assert.False(grandchild.IsCompleted);
        Assert.False(join.IsCompleted);
        grandchildGate.SetResult();
        await join.WaitAsync(Patience);
        Assert.True(grandchild.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Start_after_Cancel_returns_a_cancelled_task_and_does_not_run_the_work()
    {
        var scope = new TaskScope();
        var ran = false;
        scope.Cancel();

        var child = scope.Start(_ =>
        {
            Volatile.Write(ref ran, true);
            return Task.CompletedTask;
        });

        Assert.True(child.IsCanceled);
        var join = scope.JoinAsync();
        await Settled(join);
        Assert.True(join.IsCanceled);
        Assert.False(Volatile.Read(ref ran));
    }

    [Fact]
    public async Task Start_after_a_failure_returns_a_cancelled_task_and_does_not_run_the_work()
    {
        var scope = new TaskScope();
        var failure = new InvalidOperationException("first failure");
        _ = scope.Start(_ => Task.FromException(failure));
        await WhenCancelled(scope.Token).WaitAsync(Patience);
        var ran = false;

        var child = scope.Start(_ =>
        {
            Volatile.Write(ref ran, true);
            return Task.CompletedTask;
        });

        Assert.True(child.IsCanceled);
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
        Assert.False(Volatile.Read(ref ran));
    }

    [Fact]
    public async Task Start_after_the_join_completed_throws_InvalidOperationException()
    {
        var scope = new TaskScope();
        await scope.JoinAsync().WaitAsync(Patience);

        Assert.Throws<InvalidOperationException>(() => { _ = scope.Start(_ => Task.CompletedTask); });
        Assert.Throws<InvalidOperationException>(() => { _ = scope.Start(_ => Task.FromResult(1)); });
    }

    [Fact]
    public async Task Start_after_DisposeAsync_throws_InvalidOperationException()
    {
        var scope = new TaskScope();
        await scope.DisposeAsync().AsTask().WaitAsync(Patience);

        Assert.Throws<InvalidOperationException>(() => { _ = scope.Start(_ => Task.CompletedTask); });
        Assert.Throws<InvalidOperationException>(() => { _ = scope.Start(_ => Task.FromResult(1)); });
    }

    [Fact]
    public async Task Start_with_null_work_throws_ArgumentNullException()
    {
        var scope = new TaskScope();

        var withoutResult = Assert.Throws<ArgumentNullException>(() => { _ = scope.Start((Func<CancellationToken, Task>)null!); });
        var withResult = Assert.Throws<ArgumentNullException>(() => { _ = scope.Start((Func<CancellationToken, Task<int>>)null!); });

        Assert.Equal("work", withoutResult.ParamName);
        Assert.Equal("work", withResult.ParamName);
        await scope.JoinAsync().WaitAsync(Patience);
    }

    // --- Join -----------------------------------------------------------------------------------------------------

    [Fact]
    public async Task JoinAsync_returns_the_same_task_on_every_call()
    {
        var scope = new TaskScope();
        var gate = NewGate();
        _ = scope.Start(async _ => await gate.Task);

        var first = scope.JoinAsync();
        var second = scope.JoinAsync();
        gate.SetResult();
        await first.WaitAsync(Patience);
        var afterCompletion = scope.JoinAsync();

        Assert.Same(first, second);
        Assert.Same(first, afterCompletion);
    }

    [Fact]
    public async Task After_a_successful_join_every_child_task_is_completed()
    {
        var scope = new TaskScope();
        var gate = NewGate();
        var children = Enumerable.Range(0, 20)
            .Select(index => scope.Start(async _ =>
            {
                await gate.Task;
                return index;
            }))
            .ToArray();

        var join = scope.JoinAsync();
        gate.SetResult();
        await join.WaitAsync(Patience);

        Assert.True(join.IsCompletedSuccessfully);
        Assert.All(children, child => Assert.True(child.IsCompletedSuccessfully));
        Assert.Equal(Enumerable.Range(0, 20), children.Select(child => child.Result));
    }

    // --- DisposeAsync ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task DisposeAsync_before_the_join_cancels_and_waits_for_the_finally_of_every_child()
    {
        var scope = new TaskScope();
        var waiting = NewGate();
        var inFinally = NewGate();
        var finallyGate = NewGate();
        var finallyDone = false;
        var child = scope.Start(async token =>
        {
            try
            {
                waiting.SetResult();
                await Task.Delay(Timeout.Infinite, token);
            }
            finally
            {
                inFinally.SetResult();
                await finallyGate.Task;
                Volatile.Write(ref finallyDone, true);
            }
        });
        await waiting.Task.WaitAsync(Patience);

        var disposal = scope.DisposeAsync().AsTask();
        await inFinally.Task.WaitAsync(Patience);

        Assert.True(scope.Token.IsCancellationRequested);
        Assert.False(disposal.IsCompleted);
        Assert.False(Volatile.Read(ref finallyDone));
        finallyGate.SetResult();
        await disposal.WaitAsync(Patience);
        Assert.True(Volatile.Read(ref finallyDone));
        Assert.True(child.IsCanceled);
    }

    [Fact]
    public async Task DisposeAsync_never_throws_even_with_failed_children()
    {
        var scope = new TaskScope(new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll, Name = UniqueName() });
        var failedEarly = scope.Start(_ => Task.FromException(new InvalidOperationException("failed before disposal")));
        var failsOnCancellation = scope.Start(async token =>
        {
            await WhenCancelled(token);
            throw new FormatException("failed while the disposal cancelled it");
        });
        await Settled(failedEarly);

        var disposal = scope.DisposeAsync().AsTask();
        await Settled(disposal);

        Assert.True(disposal.IsCompletedSuccessfully);
        Assert.True(failedEarly.IsFaulted);
        Assert.True(failsOnCancellation.IsFaulted);
    }

    [Fact]
    public async Task DisposeAsync_before_the_join_reports_each_unobserved_failure_once()
    {
        var name = UniqueName();
        var log = new UnobservedLog(name);
        ScopeDiagnostics.UnobservedFailure += log.OnUnobserved;
        try
        {
            var scope = new TaskScope(new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll, Name = name });
            var early = new InvalidOperationException("failed before disposal");
            var late = new FormatException("failed while the disposal cancelled it");
            var failedEarly = scope.Start(_ => Task.FromException(early));
            _ = scope.Start(async token =>
            {
                await WhenCancelled(token);
                throw late;
            });
            await Settled(failedEarly);

            await scope.DisposeAsync().AsTask().WaitAsync(Patience);
            await scope.DisposeAsync().AsTask().WaitAsync(Patience);

            var reported = log.Reported;
            Assert.Equal(2, reported.Length);
            Assert.Single(reported, exception => ReferenceEquals(exception, early));
            Assert.Single(reported, exception => ReferenceEquals(exception, late));
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= log.OnUnobserved;
        }
    }

    [Fact]
    public async Task DisposeAsync_after_a_completed_join_is_a_no_op_and_reports_nothing()
    {
        var name = UniqueName();
        var log = new UnobservedLog(name);
        ScopeDiagnostics.UnobservedFailure += log.OnUnobserved;
        try
        {
            var scope = new TaskScope(new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll, Name = name });
            var failure = new InvalidOperationException("observed through the join");
            _ = scope.Start(_ => Task.FromException(failure));
            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
            Assert.Same(failure, thrown);

            var disposal = scope.DisposeAsync().AsTask();

            Assert.True(disposal.IsCompletedSuccessfully);
            Assert.False(scope.Token.IsCancellationRequested);
            Assert.Empty(log.Reported);
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= log.OnUnobserved;
        }
    }

    [Fact]
    public async Task DisposeAsync_does_not_report_failures_of_a_scope_whose_JoinAsync_was_called_before()
    {
        var name = UniqueName();
        var log = new UnobservedLog(name);
        ScopeDiagnostics.UnobservedFailure += log.OnUnobserved;
        try
        {
            var scope = new TaskScope(new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll, Name = name });
            var failure = new InvalidOperationException("observed through the join");
            var failed = scope.Start(_ => Task.FromException(failure));
            var pending = scope.Start(async token => await Task.Delay(Timeout.Infinite, token));
            await Settled(failed);

            var join = scope.JoinAsync();
            Assert.False(join.IsCompleted);
            await scope.DisposeAsync().AsTask().WaitAsync(Patience);

            Assert.True(pending.IsCanceled);
            Assert.Empty(log.Reported);
            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => join.WaitAsync(Patience));
            Assert.Same(failure, thrown);
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= log.OnUnobserved;
        }
    }

    // --- MaxConcurrency -------------------------------------------------------------------------------------------

    [Fact]
    public async Task MaxConcurrency_is_never_exceeded()
    {
        const int Children = 50;
        const int Max = 4;
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = Max });
        var meter = new ConcurrencyMeter();
        var starts = Channel.CreateUnbounded<int>();
        var gates = Enumerable.Range(0, Children).Select(_ => NewGate()).ToArray();
        var children = new Task[Children];
        for (var i = 0; i < Children; i++)
        {
            var index = i;
            children[index] = scope.Start(async _ =>
            {
                meter.Enter();
                try
                {
                    await starts.Writer.WriteAsync(index, CancellationToken.None);
                    await gates[index].Task;
                }
                finally
                {
                    meter.Exit();
                }
            });
        }

        // Waits until as many children run as may, then releases the longest running one, in turn.
        var running = new Queue<int>();
        for (var released = 0; released < Children; released++)
        {
            while (running.Count < Math.Min(Max, Children - released))
            {
                running.Enqueue(await starts.Reader.ReadAsync().AsTask().WaitAsync(Patience));
            }

            var next = running.Dequeue();
            gates[next].SetResult();
            await children[next].WaitAsync(Patience);
        }

        await scope.JoinAsync().WaitAsync(Patience);
        Assert.True(meter.Peak <= Max, $"{meter.Peak} children ran at once, more than the MaxConcurrency of {Max}.");
        Assert.Equal(Max, meter.Peak);
    }

    [Fact]
    public async Task Children_beyond_MaxConcurrency_start_first_in_first_out()
    {
        const int Children = 50;
        const int Max = 3;
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = Max });
        var starts = Channel.CreateUnbounded<int>();
        var gates = Enumerable.Range(0, Children).Select(_ => NewGate()).ToArray();
        for (var i = 0; i < Children; i++)
        {
            var index = i;
            _ = scope.Start(async _ =>
            {
                await starts.Writer.WriteAsync(index, CancellationToken.None);
                await gates[index].Task;
            });
        }

        var firstStarted = new List<int>();
        for (var i = 0; i < Max; i++)
        {
            firstStarted.Add(await starts.Reader.ReadAsync().AsTask().WaitAsync(Patience));
        }

        Assert.Equal(Enumerable.Range(0, Max), firstStarted.Order());

        // Children 0..Max-1 hold the slots; releasing child i frees one, which the oldest waiting child, i + Max, takes.
        for (var i = 0; i < Children - Max; i++)
        {
            gates[i].SetResult();
            Assert.Equal(i + Max, await starts.Reader.ReadAsync().AsTask().WaitAsync(Patience));
        }

        for (var i = Children - Max; i < Children; i++)
        {
            gates[i].SetResult();
        }

        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_slot_freed_when_no_child_waits_goes_to_the_next_child_started()
    {
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        await scope.Start(_ => Task.CompletedTask).WaitAsync(Patience);

        var second = scope.Start(_ => Task.FromResult(2));

        Assert.Equal(2, await second.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_failure_cancels_the_children_waiting_for_a_slot_without_running_them()
    {
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        var failGate = NewGate();
        var failure = new InvalidOperationException("the child holding the only slot failed");
        var ran = false;
        _ = scope.Start(async _ =>
        {
            await failGate.Task;
            throw failure;
        });
        var waiting = scope.Start(_ =>
        {
            Volatile.Write(ref ran, true);
            return Task.CompletedTask;
        });
        Assert.False(waiting.IsCompleted);

        failGate.SetResult();

        await Settled(waiting);
        Assert.True(waiting.IsCanceled);
        Assert.False(Volatile.Read(ref ran));
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.JoinAsync().WaitAsync(Patience));
        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task Cancel_cancels_the_children_waiting_for_a_slot_without_running_them()
    {
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        var holding = NewGate();
        var ran = false;
        var holder = scope.Start(async token =>
        {
            holding.SetResult();
            await Task.Delay(Timeout.Infinite, token);
        });
        var waiting = scope.Start(_ =>
        {
            Volatile.Write(ref ran, true);
            return Task.CompletedTask;
        });
        await holding.Task.WaitAsync(Patience);

        scope.Cancel();

        await Settled(waiting);
        Assert.True(waiting.IsCanceled);
        Assert.False(Volatile.Read(ref ran));
        await Settled(holder);
        Assert.True(holder.IsCanceled);
        var join = scope.JoinAsync();
        await Settled(join);
        Assert.True(join.IsCanceled);
    }

    // --- Timeout and cancellation of the join ---------------------------------------------------------------------

    [Fact]
    public async Task Timeout_makes_the_join_fail_with_TimeoutException()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { Timeout = Limit, TimeProvider = time });
        var child = await StartUntilCancelledAsync(scope, Patience);
        var join = scope.JoinAsync();

        time.Advance(Limit - TimeSpan.FromTicks(1));
        Assert.False(scope.Token.IsCancellationRequested);
        Assert.False(join.IsCompleted);
        time.Advance(TimeSpan.FromTicks(1));

        await Assert.ThrowsAsync<TimeoutException>(() => join.WaitAsync(Patience));
        Assert.True(child.IsCanceled);
    }

    [Fact]
    public async Task Timeout_of_zero_cancels_at_once()
    {
        var scope = new TaskScope(new TaskScopeOptions { Timeout = TimeSpan.Zero, TimeProvider = new FakeTimeProvider() });

        Assert.True(scope.Token.IsCancellationRequested);
        var child = scope.Start(_ => Task.CompletedTask);
        Assert.True(child.IsCanceled);
        await Assert.ThrowsAsync<TimeoutException>(() => scope.JoinAsync().WaitAsync(Patience));
    }

    [Fact]
    public async Task Timeout_of_InfiniteTimeSpan_is_accepted_and_never_fires()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { Timeout = Timeout.InfiniteTimeSpan, TimeProvider = time });

        time.Advance(TimeSpan.FromDays(400));

        Assert.False(scope.Token.IsCancellationRequested);
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task Cancelling_the_outer_token_makes_the_join_cancelled()
    {
        using var outer = new CancellationTokenSource();
        var scope = new TaskScope(outer.Token);
        var child = await StartUntilCancelledAsync(scope, Patience);
        var join = scope.JoinAsync();

        outer.Cancel();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => join.WaitAsync(Patience));
        Assert.True(join.IsCanceled);
        Assert.True(child.IsCanceled);
        Assert.Equal(outer.Token, thrown.CancellationToken);
    }

    [Fact]
    public async Task Cancel_makes_the_join_cancelled()
    {
        var scope = new TaskScope();
        var child = await StartUntilCancelledAsync(scope, Patience);
        var join = scope.JoinAsync();

        scope.Cancel();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => join.WaitAsync(Patience));
        Assert.True(join.IsCanceled);
        Assert.True(child.IsCanceled);
        Assert.Equal(scope.Token, thrown.CancellationToken);
    }

    [Fact]
    public async Task Cancel_after_the_scope_closed_does_nothing()
    {
        var scope = new TaskScope();
        var callbackRan = false;
        scope.Token.Register(() => callbackRan = true);
        await scope.JoinAsync().WaitAsync(Patience);

        scope.Cancel();

        Assert.False(scope.Token.IsCancellationRequested);
        Assert.False(callbackRan);
        Assert.True(scope.JoinAsync().IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_failure_wins_over_Cancel()
    {
        var scope = new TaskScope(new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll });
        var failure = new InvalidOperationException("failed before the scope was cancelled");
        var failed = scope.Start(_ => Task.FromException(failure));
        _ = scope.Start(async token => await Task.Delay(Timeout.Infinite, token));
        await Settled(failed);
        var join = scope.JoinAsync();

        scope.Cancel();

        await Settled(join);
        Assert.True(join.IsFaulted);
        Assert.False(join.IsCanceled);
        Assert.Same(failure, Assert.Single(join.Exception!.InnerExceptions));
    }

    [Fact]
    public async Task A_failure_wins_over_the_outer_token()
    {
        using var outer = new CancellationTokenSource();
        var scope = new TaskScope(outer.Token);
        var failure = new InvalidOperationException("failed while the outer token cancelled it");
        var waiting = NewGate();
        _ = scope.Start(async token =>
        {
            waiting.SetResult();
            await WhenCancelled(token);
            throw failure;
        });
        await waiting.Task.WaitAsync(Patience);
        var join = scope.JoinAsync();

        outer.Cancel();

        await Settled(join);
        Assert.True(join.IsFaulted);
        Assert.False(join.IsCanceled);
        Assert.Same(failure, Assert.Single(join.Exception!.InnerExceptions));
    }

    [Fact]
    public async Task A_failure_wins_over_the_timeout()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { Timeout = Limit, TimeProvider = time });
        var failure = new InvalidOperationException("failed while the timeout cancelled it");
        var waiting = NewGate();
        _ = scope.Start(async token =>
        {
            waiting.SetResult();
            await WhenCancelled(token);
            throw failure;
        });
        await waiting.Task.WaitAsync(Patience);
        var join = scope.JoinAsync();

        time.Advance(Limit);

        await Settled(join);
        Assert.True(join.IsFaulted);
        Assert.Same(failure, Assert.Single(join.Exception!.InnerExceptions));
    }

    // --- Callbacks registered on Token -----------------------------------------------------------------------------

    // Each test joins first and has a child that ends inside the cancellation, on the cancelling thread, so that the
    // scope could close before the failing callback's exception is recorded. It must not.

    [Fact]
    public async Task A_Token_callback_that_throws_on_Cancel_is_a_failure_of_the_scope_and_Cancel_does_not_throw()
    {
        var scope = new TaskScope();
        var (child, join, callbackFailure) = await JoinWithAChildAndAFailingCallback(scope);

        var cancelException = await Task.Run(() => Record.Exception(scope.Cancel));

        Assert.Null(cancelException);
        await Settled(join);
        Assert.True(child.IsCanceled);
        Assert.True(join.IsFaulted);
        Assert.Same(callbackFailure, Assert.Single(join.Exception!.InnerExceptions));
    }

    [Fact]
    public async Task A_Token_callback_that_throws_when_the_timeout_fires_is_a_failure_of_the_scope()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { Timeout = Limit, TimeProvider = time });
        var (child, join, callbackFailure) = await JoinWithAChildAndAFailingCallback(scope);

        // The timer's thread (here, the one advancing the clock) must not receive the callback's exception.
        var advanceException = await Task.Run(() => Record.Exception(() => time.Advance(Limit)));

        Assert.Null(advanceException);
        await Settled(join);
        Assert.True(child.IsCanceled);
        Assert.True(join.IsFaulted);
        Assert.Same(callbackFailure, Assert.Single(join.Exception!.InnerExceptions));
    }

    [Fact]
    public async Task A_Token_callback_that_throws_when_the_outer_token_is_cancelled_is_a_failure_of_the_scope()
    {
        using var outer = new CancellationTokenSource();
        var scope = new TaskScope(outer.Token);
        var (child, join, callbackFailure) = await JoinWithAChildAndAFailingCallback(scope);

        var cancelException = await Task.Run(() => Record.Exception(outer.Cancel));

        Assert.Null(cancelException);
        await Settled(join);
        Assert.True(child.IsCanceled);
        Assert.True(join.IsFaulted);
        Assert.Same(callbackFailure, Assert.Single(join.Exception!.InnerExceptions));
    }

    [Fact]
    public async Task A_Token_callback_that_throws_when_a_child_fails_is_a_failure_after_the_root_cause()
    {
        var scope = new TaskScope();
        var (child, join, callbackFailure) = await JoinWithAChildAndAFailingCallback(scope);
        var rootCause = new FormatException("the first failure");

        _ = scope.Start(_ => Task.FromException(rootCause));

        await Settled(join);
        Assert.True(child.IsCanceled);
        Assert.True(join.IsFaulted);
        Assert.Equal(new Exception[] { rootCause, callbackFailure }, join.Exception!.InnerExceptions);
    }

    // A scope with one child waiting on Token, a callback on Token that throws, and the join already begun. The child's
    // task completes without RunContinuationsAsynchronously, inside a callback on Token: so, cancelled from a thread
    // with no synchronization context, the child ends on the cancelling thread, before the cancellation returns.
    private static async Task<(Task Child, Task Join, Exception CallbackFailure)> JoinWithAChildAndAFailingCallback(TaskScope scope)
    {
        var callbackFailure = new InvalidOperationException("a callback registered on Token failed");
        var childWork = new TaskCompletionSource();
        scope.Token.Register(() => throw callbackFailure);
        scope.Token.Register(() => childWork.TrySetCanceled(scope.Token));
        var waiting = NewGate();
        var child = scope.Start(_ =>
        {
            waiting.SetResult();
            return childWork.Task;
        });
        await waiting.Task.WaitAsync(Patience);
        var join = scope.JoinAsync();
        Assert.False(join.IsCompleted);
        return (child, join, callbackFailure);
    }

    // --- Options --------------------------------------------------------------------------------------------------

    [Fact]
    public void An_undefined_FailureMode_throws_at_construction()
    {
        var options = new TaskScopeOptions { FailureMode = (TaskScopeFailureMode)42 };

        var thrown = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = new TaskScope(options); });

        Assert.Equal(nameof(TaskScopeOptions.FailureMode), thrown.ParamName);
    }

    [Fact]
    public void A_negative_MaxConcurrency_throws_at_construction()
    {
        var options = new TaskScopeOptions { MaxConcurrency = -1 };

        var thrown = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = new TaskScope(options); });

        Assert.Equal(nameof(TaskScopeOptions.MaxConcurrency), thrown.ParamName);
    }

    [Fact]
    public void A_negative_Timeout_other_than_infinite_throws_at_construction()
    {
        var options = new TaskScopeOptions { Timeout = TimeSpan.FromMilliseconds(-2) };

        var thrown = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = new TaskScope(options); });

        Assert.Equal(nameof(TaskScopeOptions.Timeout), thrown.ParamName);
    }

    [Fact]
    public void A_null_TimeProvider_throws_at_construction()
    {
        var options = new TaskScopeOptions { TimeProvider = null! };

        var thrown = Assert.ThrowsAny<ArgumentException>(() => { _ = new TaskScope(options); });

        Assert.Equal(nameof(TaskScopeOptions.TimeProvider), thrown.ParamName);
    }

    // --- ExecutionContext -----------------------------------------------------------------------------------------

    [Fact]
    public async Task A_child_sees_the_AsyncLocal_values_of_the_caller_of_Start()
    {
        var scope = new TaskScope();
        _ambient.Value = "set by the caller";

        var seen = await scope.Start(_ => Task.FromResult(_ambient.Value)).WaitAsync(Patience);

        Assert.Equal("set by the caller", seen);
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_child_that_waited_for_a_slot_sees_the_AsyncLocal_values_of_its_own_Start_call()
    {
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        var gate = NewGate();
        _ambient.Value = "first";
        var first = scope.Start(async _ =>
        {
            await gate.Task;
            return _ambient.Value;
        });
        _ambient.Value = "second";
        var second = scope.Start(_ => Task.FromResult(_ambient.Value));

        Assert.False(second.IsCompleted);
        gate.SetResult();

        Assert.Equal("first", await first.WaitAsync(Patience));
        Assert.Equal("second", await second.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task An_AsyncLocal_value_set_inside_a_child_does_not_leak_to_the_caller()
    {
        var scope = new TaskScope();
        _ambient.Value = "set by the caller";

        // Not async: were the work run inline on the caller's thread, its write would be the caller's.
        var child = scope.Start(_ =>
        {
            _ambient.Value = "set by the child";
            return Task.FromResult(_ambient.Value);
        });
        Assert.Equal("set by the child", await child.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);

        Assert.Equal("set by the caller", _ambient.Value);
    }

    [Fact]
    public async Task A_child_started_while_flow_is_suppressed_sees_none_of_the_caller_AsyncLocal_values()
    {
        var scope = new TaskScope();
        _ambient.Value = "set by the caller";

        Task<string?> child;
        using (ExecutionContext.SuppressFlow())
        {
            child = scope.Start(_ => Task.FromResult<string?>(_ambient.Value));
        }

        Assert.Null(await child.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_child_started_with_no_AsyncLocal_values_sees_none_that_an_earlier_child_set()
    {
        // One slot: the second child runs after the first one finished, likely on the thread the first one ran on.
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        Task<string?> first;
        Task<string?> second;
        using (ExecutionContext.SuppressFlow())
        {
            first = scope.Start(_ =>
            {
                _ambient.Value = "set by the first child";
                return Task.FromResult<string?>(_ambient.Value);
            });
            second = scope.Start(_ => Task.FromResult(_ambient.Value));
        }

        Assert.Equal("set by the first child", await first.WaitAsync(Patience));
        Assert.Null(await second.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_child_of_a_caller_with_AsyncLocal_values_sees_them_after_a_child_of_a_caller_without_any()
    {
        // The context of a caller without values and that of a caller with values must not be taken for one another.
        var scope = new TaskScope(new TaskScopeOptions { MaxConcurrency = 1 });
        Task<string?> withoutValues;
        using (ExecutionContext.SuppressFlow())
        {
            withoutValues = scope.Start(_ => Task.FromResult(_ambient.Value));
        }

        _ambient.Value = "set by the caller";
        var withValues = scope.Start(_ => Task.FromResult(_ambient.Value));

        Assert.Null(await withoutValues.WaitAsync(Patience));
        Assert.Equal("set by the caller", await withValues.WaitAsync(Patience));
        await scope.JoinAsync().WaitAsync(Patience);
    }

    // --- Helpers --------------------------------------------------------------------------------------------------

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static string UniqueName() => $"{nameof(TaskScopeTests)}-{Guid.NewGuid()}";

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

    // Makes `first` fail, then `second` strictly after it: the child failing with `second` is started first, and
    // fails only once the scope's token is cancelled, which happens when `first` fails.
    private static async Task FailTwiceInOrder(TaskScope scope, Exception first, Exception second)
    {
        var secondWaiting = NewGate();
        var firstGate = NewGate();
        _ = scope.Start(async token =>
        {
            secondWaiting.SetResult();
            await WhenCancelled(token);
            throw second;
        });
        _ = scope.Start(async _ =>
        {
            await firstGate.Task;
            throw first;
        });
        await secondWaiting.Task.WaitAsync(Patience);
        firstGate.SetResult();
    }

    private sealed class UnobservedLog(string scopeName)
    {
        private readonly Lock _lock = new();
        private readonly List<Exception> _reported = [];

        public Exception[] Reported
        {
            get
            {
                lock (_lock)
                {
                    return [.. _reported];
                }
            }
        }

        // Other tests run in parallel and raise the same static event: only this test's scope counts.
        public void OnUnobserved(object? sender, UnobservedScopeFailureEventArgs e)
        {
            if (e.ScopeName == scopeName)
            {
                lock (_lock)
                {
                    _reported.Add(e.Exception);
                }
            }
        }
    }

    private sealed class ConcurrencyMeter
    {
        private int _current;
        private int _peak;

        public int Peak => Volatile.Read(ref _peak);

        public void Enter()
        {
            var now = Interlocked.Increment(ref _current);
            var seen = Volatile.Read(ref _peak);
            while (now > seen)
            {
                var actual = Interlocked.CompareExchange(ref _peak, now, seen);
                if (actual == seen)
                {
                    return;
                }

                seen = actual;
            }
        }

        public void Exit() => Interlocked.Decrement(ref _current);
    }
}
