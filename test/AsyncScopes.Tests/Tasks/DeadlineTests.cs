using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Tasks;

public sealed class DeadlineTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(1);

    // The largest timeout a CancellationTokenSource timer takes.
    private static readonly TimeSpan LargestTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly FakeTimeProvider _time = new();

    // Set when the work has started, so the deadline's timer exists: tests wait for it before moving the clock.
    private readonly TaskCompletionSource _workStarted = NewGate();

    [Fact]
    public async Task Work_cut_short_by_the_deadline_is_awaited_until_its_finally_has_run()
    {
        var enteredFinally = NewGate();
        var finallyGate = NewGate();
        var finallyDone = false;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            try
            {
                await WhenCancelled(cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
                return 1;
            }
            finally
            {
                enteredFinally.SetResult();
                await finallyGate.Task;
                Volatile.Write(ref finallyDone, true);
            }
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);
        await enteredFinally.Task;

        // The work has been cancelled and is inside its finally: the call must still be waiting for it.
        Assert.False(run.IsCompleted);
        Assert.False(Volatile.Read(ref finallyDone));

        finallyGate.SetResult();
        var exception = await Assert.ThrowsAsync<TimeoutException>(() => run);

        Assert.True(Volatile.Read(ref finallyDone));
        Assert.IsType<OperationCanceledException>(exception.InnerException);
    }

    [Fact]
    public async Task Work_without_result_cut_short_by_the_deadline_is_awaited_until_its_finally_has_run()
    {
        var enteredFinally = NewGate();
        var finallyGate = NewGate();
        var finallyDone = false;

        async Task Work(CancellationToken cancellationToken)
        {
            try
            {
                await WhenCancelled(cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
            }
            finally
            {
                enteredFinally.SetResult();
                await finallyGate.Task;
                Volatile.Write(ref finallyDone, true);
            }
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);
        await enteredFinally.Task;

        Assert.False(run.IsCompleted);
        Assert.False(Volatile.Read(ref finallyDone));

        finallyGate.SetResult();
        await Assert.ThrowsAsync<TimeoutException>(() => run);

        Assert.True(Volatile.Read(ref finallyDone));
    }

    [Fact]
    public async Task Work_that_fails_after_the_deadline_fired_gives_TimeoutException_with_the_work_exception_inside()
    {
        OperationCanceledException? thrown = null;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        var exception = await Assert.ThrowsAsync<TimeoutException>(() => run);
        Assert.NotNull(thrown);
        Assert.Same(thrown, exception.InnerException);
    }

    [Fact]
    public async Task Work_without_result_that_fails_after_the_deadline_fired_gives_TimeoutException_with_the_work_exception_inside()
    {
        OperationCanceledException? thrown = null;

        async Task Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        var exception = await Assert.ThrowsAsync<TimeoutException>(() => run);
        Assert.NotNull(thrown);
        Assert.Same(thrown, exception.InnerException);
    }

    [Fact]
    public async Task Work_that_fails_with_another_exception_after_the_deadline_fired_gives_TimeoutException_with_that_exception_inside()
    {
        var thrown = new InvalidOperationException("cleanup after cancellation failed");

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        var exception = await Assert.ThrowsAsync<TimeoutException>(() => run);
        Assert.Same(thrown, exception.InnerException);
    }

    [Fact]
    public async Task Outer_cancellation_propagates_the_work_OperationCanceledException_even_if_the_deadline_fired_afterwards()
    {
        using var outer = new CancellationTokenSource();
        var cancellationSeen = NewGate();
        var finish = NewGate();
        OperationCanceledException? thrown = null;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            cancellationSeen.SetResult();
            await finish.Task;
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, outer.Token, _time);
        await _workStarted.Task;
        await outer.CancelAsync();
        await cancellationSeen.Task;
        _time.Advance(Limit * 2);
        finish.SetResult();

        var exception = await Assert.ThrowsAsync<OperationCanceledException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Outer_cancellation_propagates_the_work_OperationCanceledException_from_work_without_result()
    {
        using var outer = new CancellationTokenSource();
        OperationCanceledException? thrown = null;

        async Task Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, outer.Token, _time);
        await _workStarted.Task;
        await outer.CancelAsync();
        _time.Advance(Limit * 2);

        var exception = await Assert.ThrowsAsync<OperationCanceledException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Outer_cancellation_after_the_deadline_fired_but_before_the_work_ended_propagates_the_work_OperationCanceledException()
    {
        using var outer = new CancellationTokenSource();
        var cancellationSeen = NewGate();
        var finish = NewGate();
        OperationCanceledException? thrown = null;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            cancellationSeen.SetResult();
            await finish.Task;
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, outer.Token, _time);
        await _workStarted.Task;
        _time.Advance(Limit);
        await cancellationSeen.Task;
        await outer.CancelAsync();
        finish.SetResult();

        var exception = await Assert.ThrowsAsync<OperationCanceledException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Already_cancelled_outer_token_with_zero_timeout_propagates_the_work_OperationCanceledException()
    {
        using var outer = new CancellationTokenSource();
        await outer.CancelAsync();
        OperationCanceledException? thrown = null;

        Task<int> Work(CancellationToken cancellationToken)
        {
            Assert.True(cancellationToken.IsCancellationRequested);
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var exception = await Assert.ThrowsAsync<OperationCanceledException>(
            () => Deadline.RunAsync(TimeSpan.Zero, Work, outer.Token, _time));
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Work_that_succeeds_although_the_deadline_fired_returns_its_result()
    {
        async Task<string> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            return "finished anyway";
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        Assert.Equal("finished anyway", await run);
    }

    [Fact]
    public async Task Work_without_result_that_succeeds_although_the_deadline_fired_completes_successfully()
    {
        var finished = false;

        async Task Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            finished = true;
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);
        await run;

        Assert.True(run.IsCompletedSuccessfully);
        Assert.True(finished);
    }

    [Fact]
    public async Task Work_that_finishes_in_time_returns_its_result_and_its_token_was_not_cancelled()
    {
        var finish = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationToken seen = default;

        var run = Deadline.RunAsync(
            Limit,
            cancellationToken =>
            {
                seen = cancellationToken;
                _workStarted.SetResult();
                return finish.Task;
            },
            timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit - TimeSpan.FromTicks(1));

        Assert.True(seen.CanBeCanceled);
        Assert.False(seen.IsCancellationRequested);
        Assert.False(run.IsCompleted);

        finish.SetResult(42);
        Assert.Equal(42, await run);
    }

    [Fact]
    public async Task The_deadline_fires_when_the_timeout_has_passed_on_the_time_provider()
    {
        CancellationToken seen = default;
        var finish = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);

        var run = Deadline.RunAsync(
            Limit,
            cancellationToken =>
            {
                seen = cancellationToken;
                _workStarted.SetResult();
                return finish.Task;
            },
            timeProvider: _time);

        await _workStarted.Task;
        _time.Advance(Limit - TimeSpan.FromMilliseconds(1));
        Assert.False(seen.IsCancellationRequested);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(seen.IsCancellationRequested);

        finish.SetResult(7);
        Assert.Equal(7, await run);
    }

    [Fact]
    public async Task Work_that_fails_before_the_deadline_fired_propagates_its_own_exception()
    {
        var fail = NewGate();
        var thrown = new InvalidOperationException("failed on its own");

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await fail.Task;
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        fail.SetResult();

        var exception = await Assert.ThrowsAsync<InvalidOperationException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Work_without_result_that_fails_before_the_deadline_fired_propagates_its_own_exception()
    {
        var fail = NewGate();
        var thrown = new InvalidOperationException("failed on its own");

        async Task Work(CancellationToken cancellationToken)
        {
            await fail.Task;
            throw thrown;
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        fail.SetResult();

        var exception = await Assert.ThrowsAsync<InvalidOperationException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Work_that_fails_with_OperationCanceledException_of_its_own_before_the_deadline_propagates_it_as_it_is()
    {
        var thrown = new OperationCanceledException("cancelled by something else");

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await Task.Yield();
            throw thrown;
        }

        var exception = await Assert.ThrowsAsync<OperationCanceledException>(
            () => Deadline.RunAsync(Limit, Work, timeProvider: _time));
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task TryRunAsync_returns_true_and_the_result_when_the_work_succeeds()
    {
        var (completed, result) = await Deadline.TryRunAsync(
            Limit,
            async cancellationToken =>
            {
                await Task.Yield();
                return "done";
            },
            timeProvider: _time);

        Assert.True(completed);
        Assert.Equal("done", result);
    }

    [Fact]
    public async Task TryRunAsync_returns_false_and_default_when_the_deadline_cut_the_work_short()
    {
        async Task<string> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            return "not reached";
        }

        var run = Deadline.TryRunAsync(Limit, Work, timeProvider: _time);
        Assert.False(run.IsCompleted);
        await _workStarted.Task;
        _time.Advance(Limit);

        var (completed, result) = await run;
        Assert.False(completed);
        Assert.Null(result);
    }

    [Fact]
    public async Task TryRunAsync_returns_false_and_default_value_when_the_deadline_cut_value_typed_work_short()
    {
        async Task<int> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            return 42;
        }

        var run = Deadline.TryRunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        Assert.Equal((false, 0), await run);
    }

    [Fact]
    public async Task TryRunAsync_waits_for_the_work_cut_short_before_returning()
    {
        var enteredFinally = NewGate();
        var finallyGate = NewGate();
        var finallyDone = false;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            try
            {
                await WhenCancelled(cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
                return 1;
            }
            finally
            {
                enteredFinally.SetResult();
                await finallyGate.Task;
                Volatile.Write(ref finallyDone, true);
            }
        }

        var run = Deadline.TryRunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);
        await enteredFinally.Task;

        Assert.False(run.IsCompleted);

        finallyGate.SetResult();
        var (completed, _) = await run;

        Assert.False(completed);
        Assert.True(Volatile.Read(ref finallyDone));
    }

    [Fact]
    public async Task TryRunAsync_returns_true_and_the_result_when_the_work_succeeds_although_the_deadline_fired()
    {
        async Task<int> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            return 5;
        }

        var run = Deadline.TryRunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        Assert.Equal((true, 5), await run);
    }

    [Fact]
    public async Task TryRunAsync_propagates_a_failure_of_the_work_before_the_deadline_fired()
    {
        var fail = NewGate();
        var thrown = new InvalidOperationException("failed on its own");

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await fail.Task;
            throw thrown;
        }

        var run = Deadline.TryRunAsync(Limit, Work, timeProvider: _time);
        fail.SetResult();

        var exception = await Assert.ThrowsAsync<InvalidOperationException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task TryRunAsync_propagates_outer_cancellation()
    {
        using var outer = new CancellationTokenSource();
        OperationCanceledException? thrown = null;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            await WhenCancelled(cancellationToken);
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var run = Deadline.TryRunAsync(Limit, Work, outer.Token, _time);
        await _workStarted.Task;
        await outer.CancelAsync();
        _time.Advance(Limit * 2);

        var exception = await Assert.ThrowsAsync<OperationCanceledException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Zero_timeout_runs_the_work_with_an_already_cancelled_token()
    {
        var ran = false;
        var cancelledAtStart = false;

        Task<int> Work(CancellationToken cancellationToken)
        {
            ran = true;
            cancelledAtStart = cancellationToken.IsCancellationRequested;
            return Task.FromResult(3);
        }

        var result = await Deadline.RunAsync(TimeSpan.Zero, Work, timeProvider: _time);

        Assert.True(ran);
        Assert.True(cancelledAtStart);
        Assert.Equal(3, result);
    }

    [Fact]
    public async Task Zero_timeout_with_work_that_observes_its_token_gives_TimeoutException()
    {
        OperationCanceledException? thrown = null;

        async Task Work(CancellationToken cancellationToken)
        {
            await Task.Yield();
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var exception = await Assert.ThrowsAsync<TimeoutException>(
            () => Deadline.RunAsync(TimeSpan.Zero, Work, timeProvider: _time));
        Assert.Same(thrown, exception.InnerException);
    }

    [Fact]
    public async Task Infinite_timeout_never_cancels_the_token_however_far_the_clock_advances()
    {
        CancellationToken seen = default;
        var finish = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);

        var run = Deadline.RunAsync(
            Timeout.InfiniteTimeSpan,
            cancellationToken =>
            {
                seen = cancellationToken;
                _workStarted.SetResult();
                return finish.Task;
            },
            timeProvider: _time);

        await _workStarted.Task;
        _time.Advance(LargestTimeout);
        _time.Advance(TimeSpan.FromDays(3650));

        Assert.False(seen.IsCancellationRequested);
        Assert.False(run.IsCompleted);

        finish.SetResult(9);
        Assert.Equal(9, await run);
    }

    [Fact]
    public async Task The_largest_timeout_is_accepted_and_fires_only_once_it_has_passed()
    {
        CancellationToken seen = default;
        var finish = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);

        var run = Deadline.RunAsync(
            LargestTimeout,
            cancellationToken =>
            {
                seen = cancellationToken;
                _workStarted.SetResult();
                return finish.Task;
            },
            timeProvider: _time);

        await _workStarted.Task;
        _time.Advance(LargestTimeout - TimeSpan.FromMilliseconds(1));
        Assert.False(seen.IsCancellationRequested);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(seen.IsCancellationRequested);

        finish.SetResult(1);
        Assert.Equal(1, await run);
    }

    [Fact]
    public void Negative_timeout_throws_ArgumentOutOfRangeException_without_running_the_work()
    {
        var ran = false;
        var negative = TimeSpan.FromMilliseconds(-2);

        var exceptions = new[]
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.RunAsync(negative, Work, timeProvider: _time); }),
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.RunAsync(negative, WorkWithoutResult, timeProvider: _time); }),
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.TryRunAsync(negative, Work, timeProvider: _time); }),
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.RunAsync(TimeSpan.MinValue, Work, timeProvider: _time); }),
        };

        Assert.All(exceptions, exception => Assert.Equal("timeout", exception.ParamName));
        Assert.False(ran);

        Task<int> Work(CancellationToken cancellationToken)
        {
            ran = true;
            return Task.FromResult(0);
        }

        Task WorkWithoutResult(CancellationToken cancellationToken)
        {
            ran = true;
            return Task.CompletedTask;
        }
    }

    [Fact]
    public void Too_large_timeout_throws_ArgumentOutOfRangeException_without_running_the_work()
    {
        var ran = false;
        var tooLarge = LargestTimeout + TimeSpan.FromMilliseconds(1);

        var exceptions = new[]
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.RunAsync(tooLarge, Work, timeProvider: _time); }),
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.RunAsync(tooLarge, WorkWithoutResult, timeProvider: _time); }),
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.TryRunAsync(tooLarge, Work, timeProvider: _time); }),
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = Deadline.RunAsync(TimeSpan.MaxValue, Work, timeProvider: _time); }),
        };

        Assert.All(exceptions, exception => Assert.Equal("timeout", exception.ParamName));
        Assert.False(ran);

        Task<int> Work(CancellationToken cancellationToken)
        {
            ran = true;
            return Task.FromResult(0);
        }

        Task WorkWithoutResult(CancellationToken cancellationToken)
        {
            ran = true;
            return Task.CompletedTask;
        }
    }

    [Fact]
    public void Null_work_throws_ArgumentNullException_synchronously()
    {
        var exceptions = new[]
        {
            Assert.Throws<ArgumentNullException>(() => { _ = Deadline.RunAsync<int>(Limit, null!, timeProvider: _time); }),
            Assert.Throws<ArgumentNullException>(() => { _ = Deadline.RunAsync(Limit, null!, timeProvider: _time); }),
            Assert.Throws<ArgumentNullException>(() => { _ = Deadline.TryRunAsync<int>(Limit, null!, timeProvider: _time); }),
        };

        Assert.All(exceptions, exception => Assert.Equal("work", exception.ParamName));
    }

    [Fact]
    public async Task Synchronous_throw_from_the_work_before_the_deadline_faults_the_task_with_that_exception()
    {
        var thrown = new InvalidOperationException("thrown before the first await");

        var run = Deadline.RunAsync<int>(Limit, _ => throw thrown, timeProvider: _time);

        // The call itself did not throw: the exception is in the task.
        var exception = await Assert.ThrowsAsync<InvalidOperationException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Synchronous_throw_from_work_without_result_before_the_deadline_faults_the_task_with_that_exception()
    {
        var thrown = new InvalidOperationException("thrown before the first await");

        var run = Deadline.RunAsync(Limit, (Func<CancellationToken, Task>)(_ => throw thrown), timeProvider: _time);

        // The call itself did not throw: the exception is in the task.
        var exception = await Assert.ThrowsAsync<InvalidOperationException>(() => run);
        Assert.Same(thrown, exception);
    }

    [Fact]
    public async Task Synchronous_throw_from_the_work_after_the_deadline_fired_gives_TimeoutException_with_that_exception_inside()
    {
        OperationCanceledException? thrown = null;

        Task<int> Work(CancellationToken cancellationToken)
        {
            thrown = new OperationCanceledException(cancellationToken);
            throw thrown;
        }

        var run = Deadline.RunAsync(TimeSpan.Zero, Work, timeProvider: _time);

        // The call itself did not throw: the exception is in the task.
        var exception = await Assert.ThrowsAsync<TimeoutException>(() => run);
        Assert.Same(thrown, exception.InnerException);
    }

    [Fact]
    public async Task TryRunAsync_treats_a_synchronous_throw_after_the_deadline_fired_like_an_asynchronous_one()
    {
        var run = Deadline.TryRunAsync<int>(
            TimeSpan.Zero,
            cancellationToken =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                return Task.FromResult(1);
            },
            timeProvider: _time);

        Assert.Equal((false, 0), await run);
    }

    // --- Callbacks registered on the work's token that throw ------------------------------------------------------

    [Fact]
    public async Task A_token_callback_that_throws_when_the_deadline_fires_faults_the_call_not_the_timer()
    {
        var callbackFailure = new InvalidOperationException("a callback registered on the work's token failed");
        OperationCanceledException? workFailure = null;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            cancellationToken.Register(() => throw callbackFailure);
            await WhenCancelled(cancellationToken);
            workFailure = new OperationCanceledException(cancellationToken);
            throw workFailure;
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;

        // The timer's thread (here, the one advancing the clock) must not receive the callback's exception.
        _time.Advance(Limit);

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run);
        Assert.Equal(2, thrown.InnerExceptions.Count);
        Assert.Same(callbackFailure, thrown.InnerExceptions[0]);
        var timeout = Assert.IsType<TimeoutException>(thrown.InnerExceptions[1]);
        Assert.Same(workFailure, timeout.InnerException);
    }

    [Fact]
    public async Task A_token_callback_that_throws_when_the_deadline_fires_faults_work_without_result_that_succeeded()
    {
        var callbackFailure = new InvalidOperationException("a callback registered on the work's token failed");

        async Task Work(CancellationToken cancellationToken)
        {
            cancellationToken.Register(() => throw callbackFailure);
            await WhenCancelled(cancellationToken);
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run);
        Assert.Same(callbackFailure, Assert.Single(thrown.InnerExceptions));
    }

    [Fact]
    public async Task TryRunAsync_faults_when_a_token_callback_throws_at_the_deadline_instead_of_returning_false()
    {
        var callbackFailure = new InvalidOperationException("a callback registered on the work's token failed");

        async Task<int> Work(CancellationToken cancellationToken)
        {
            cancellationToken.Register(() => throw callbackFailure);
            await WhenCancelled(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            return 1;
        }

        var run = Deadline.TryRunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run);
        Assert.Equal(2, thrown.InnerExceptions.Count);
        Assert.Same(callbackFailure, thrown.InnerExceptions[0]);
        Assert.IsType<TimeoutException>(thrown.InnerExceptions[1]);
    }

    [Fact]
    public async Task A_token_callback_that_throws_when_the_outer_token_is_cancelled_faults_the_call_not_the_canceller()
    {
        using var outer = new CancellationTokenSource();
        var callbackFailure = new InvalidOperationException("a callback registered on the work's token failed");
        OperationCanceledException? workFailure = null;

        async Task<int> Work(CancellationToken cancellationToken)
        {
            cancellationToken.Register(() => throw callbackFailure);
            await WhenCancelled(cancellationToken);
            workFailure = new OperationCanceledException(cancellationToken);
            throw workFailure;
        }

        var run = Deadline.RunAsync(Limit, Work, outer.Token, _time);
        await _workStarted.Task;

        outer.Cancel();

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run);
        Assert.Equal<Exception>([callbackFailure, workFailure!], thrown.InnerExceptions);
    }

    [Fact]
    public async Task Token_callbacks_that_throw_are_all_in_the_outcome_in_the_order_they_threw()
    {
        var thrownInOrder = new List<Exception>();

        async Task Work(CancellationToken cancellationToken)
        {
            foreach (var name in new[] { "first registered", "second registered" })
            {
                var failure = new InvalidOperationException(name);
                cancellationToken.Register(() =>
                {
                    thrownInOrder.Add(failure);
                    throw failure;
                });
            }

            await WhenCancelled(cancellationToken);
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;
        _time.Advance(Limit);

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run);
        Assert.Equal(2, thrownInOrder.Count);
        Assert.Equal(thrownInOrder, thrown.InnerExceptions);
    }

    [Fact]
    public async Task A_token_callback_that_throws_after_the_work_already_ended_is_still_in_the_outcome()
    {
        // The work ends inside the cancellation, on the thread that runs the callbacks, before a callback registered
        // earlier (callbacks run last registered first) throws: the call must wait for the callbacks to finish.
        var callbackFailure = new InvalidOperationException("thrown after the work ended");
        var workEnded = false;

        async Task Work(CancellationToken cancellationToken)
        {
            cancellationToken.Register(() =>
            {
                Assert.True(Volatile.Read(ref workEnded));
                throw callbackFailure;
            });
            var cancelled = new TaskCompletionSource(); // continuations run inline, on the cancelling thread
            cancellationToken.Register(() => cancelled.SetResult());
            _workStarted.SetResult();
            await cancelled.Task.ConfigureAwait(false);
            Volatile.Write(ref workEnded, true);
        }

        var run = Deadline.RunAsync(Limit, Work, timeProvider: _time);
        await _workStarted.Task;

        // Off the test's SynchronizationContext, where continuations would not run inline.
        await Task.Run(() => _time.Advance(Limit));

        var thrown = await Assert.ThrowsAsync<AggregateException>(() => run);
        Assert.Same(callbackFailure, Assert.Single(thrown.InnerExceptions));
    }

    [Fact]
    public async Task A_deadline_that_would_fire_after_the_call_returned_runs_no_callback()
    {
        var callbackRan = false;

        Task<int> Work(CancellationToken cancellationToken)
        {
            cancellationToken.Register(() => callbackRan = true);
            return Task.FromResult(1);
        }

        Assert.Equal(1, await Deadline.RunAsync(Limit, Work, timeProvider: _time));
        _time.Advance(Limit * 2);

        Assert.False(callbackRan);
    }

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Marks the work as started, and completes when the token is cancelled; continuations run asynchronously, off the
    // thread that cancelled.
    private Task WhenCancelled(CancellationToken cancellationToken)
    {
        _workStarted.TrySetResult();
        var cancelled = NewGate();
        cancellationToken.Register(static state => ((TaskCompletionSource)state!).TrySetResult(), cancelled);
        return cancelled.Task;
    }
}
