namespace AsyncScopes.Tests.Tasks;

public sealed class TaskScopeRaceTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_first_success_wins_and_the_others_see_cancellation()
    {
        var winnerGate = NewGate();
        var losersWaiting = new[] { NewGate(), NewGate() };
        var losersSawCancellation = new bool[2];

        Func<CancellationToken, Task<string>> Loser(int index) => async token =>
        {
            try
            {
                losersWaiting[index].SetResult();
                await Task.Delay(Timeout.Infinite, token);
                return "loser";
            }
            finally
            {
                Volatile.Write(ref losersSawCancellation[index], token.IsCancellationRequested);
            }
        };

        var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<string>>[]
        {
            Loser(0),
            async _ =>
            {
                await winnerGate.Task;
                return "winner";
            },
            Loser(1),
        });
        await Task.WhenAll(losersWaiting.Select(gate => gate.Task)).WaitAsync(Patience);
        Assert.False(race.IsCompleted);

        winnerGate.SetResult();

        Assert.Equal("winner", await race.WaitAsync(Patience));
        Assert.True(Volatile.Read(ref losersSawCancellation[0]));
        Assert.True(Volatile.Read(ref losersSawCancellation[1]));
    }

    [Fact]
    public async Task A_failed_contender_does_not_win_a_later_success_does()
    {
        var failure = new InvalidOperationException("failed first");
        var failed = NewGate();
        var winnerGate = NewGate();

        var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<int>>[]
        {
            async _ =>
            {
                await Task.Yield();
                failed.SetResult();
                throw failure;
            },
            async _ =>
            {
                await winnerGate.Task;
                return 2;
            },
        });
        await failed.Task.WaitAsync(Patience);
        winnerGate.SetResult();

        Assert.Equal(2, await race.WaitAsync(Patience));
    }

    [Fact]
    public async Task The_losers_are_cancelled_and_awaited_until_their_finally_has_run()
    {
        var loserInFinally = NewGate();
        var loserFinallyGate = NewGate();
        var loserWaiting = NewGate();
        var winnerGate = NewGate();
        var loserFinallyDone = false;

        var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<string>>[]
        {
            async _ =>
            {
                await winnerGate.Task;
                return "winner";
            },
            async token =>
            {
                try
                {
                    loserWaiting.SetResult();
                    await Task.Delay(Timeout.Infinite, token);
                    return "loser";
                }
                finally
                {
                    loserInFinally.SetResult();
                    await loserFinallyGate.Task;
                    Volatile.Write(ref loserFinallyDone, true);
                }
            },
        });
        await loserWaiting.Task.WaitAsync(Patience);
        winnerGate.SetResult();
        await loserInFinally.Task.WaitAsync(Patience);

        // The winner is known and the loser cancelled, but the loser is still in its finally.
        Assert.False(race.IsCompleted);
        Assert.False(Volatile.Read(ref loserFinallyDone));
        loserFinallyGate.SetResult();
        Assert.Equal("winner", await race.WaitAsync(Patience));
        Assert.True(Volatile.Read(ref loserFinallyDone));
    }

    [Fact]
    public async Task A_disposable_result_of_a_loser_that_succeeded_after_the_winner_is_disposed()
    {
        var winnerValue = new Resource();
        var loserValue = new Resource();
        var winnerGate = NewGate();
        var loserWaiting = NewGate();

        var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<Resource>>[]
        {
            async _ =>
            {
                await winnerGate.Task;
                return winnerValue;
            },
            async token =>
            {
                // Ignores the cancellation: succeeds, after the winner.
                loserWaiting.SetResult();
                await WhenCancelled(token);
                return loserValue;
            },
        });
        await loserWaiting.Task.WaitAsync(Patience);
        winnerGate.SetResult();

        Assert.Same(winnerValue, await race.WaitAsync(Patience));
        Assert.Equal(1, loserValue.Disposals);
        Assert.Equal(0, winnerValue.Disposals);
    }

    [Fact]
    public async Task An_async_disposable_result_of_a_loser_that_succeeded_after_the_winner_is_disposed()
    {
        var winnerValue = new AsyncResource();
        var loserValue = new AsyncResource();
        var winnerGate = NewGate();
        var loserWaiting = NewGate();

        var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<AsyncResource>>[]
        {
            async _ =>
            {
                await winnerGate.Task;
                return winnerValue;
            },
            async token =>
            {
                // Ignores the cancellation: succeeds, after the winner.
                loserWaiting.SetResult();
                await WhenCancelled(token);
                return loserValue;
            },
        });
        await loserWaiting.Task.WaitAsync(Patience);
        winnerGate.SetResult();

        Assert.Same(winnerValue, await race.WaitAsync(Patience));
        Assert.Equal(1, loserValue.Disposals);
        Assert.Equal(0, winnerValue.Disposals);
    }

    [Fact]
    public async Task When_every_contender_fails_the_race_faults_with_all_the_failures()
    {
        var synchronous = new InvalidOperationException("thrown synchronously");
        var asynchronous = new FormatException("thrown after an await");
        var faultedTask = new NotSupportedException("returned as a faulted task");

        var reported = new List<Exception>();
        void OnUnobserved(object? sender, UnobservedScopeFailureEventArgs e)
        {
            if (e.Exception == synchronous || e.Exception == asynchronous || e.Exception == faultedTask)
            {
                lock (reported)
                {
                    reported.Add(e.Exception);
                }
            }
        }

        ScopeDiagnostics.UnobservedFailure += OnUnobserved;
        try
        {
            var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<int>>[]
            {
                _ => throw synchronous,
                async _ =>
                {
                    await Task.Yield();
                    throw asynchronous;
                },
                _ => Task.FromException<int>(faultedTask),
            });

            await Settled(race);
            Assert.True(race.IsFaulted);
            var failures = race.Exception!.InnerExceptions;
            Assert.Equal(3, failures.Count);
            Assert.Contains(synchronous, failures);
            Assert.Contains(asynchronous, failures);
            Assert.Contains(faultedTask, failures);

            // The race's outcome carries them: none of them is also reported as unobserved.
            Assert.Empty(reported);
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= OnUnobserved;
        }
    }

    [Fact]
    public async Task Cancelled_from_outside_before_anyone_won_the_race_is_cancelled_once_every_contender_ended()
    {
        using var outer = new CancellationTokenSource();
        var waiting = new[] { NewGate(), NewGate() };
        var ended = new bool[2];

        Func<CancellationToken, Task<int>> Contender(int index) => async token =>
        {
            try
            {
                waiting[index].SetResult();
                await Task.Delay(Timeout.Infinite, token);
                return index;
            }
            finally
            {
                Volatile.Write(ref ended[index], true);
            }
        };

        var race = TaskScope.RaceAsync([Contender(0), Contender(1)], outer.Token);
        await Task.WhenAll(waiting.Select(gate => gate.Task)).WaitAsync(Patience);
        await outer.CancelAsync();

        await Settled(race);
        Assert.True(race.IsCanceled);
        Assert.True(Volatile.Read(ref ended[0]));
        Assert.True(Volatile.Read(ref ended[1]));
    }

    [Fact]
    public async Task A_failure_before_an_outside_cancellation_of_a_race_nobody_won_is_kept()
    {
        using var outer = new CancellationTokenSource();
        var failure = new InvalidOperationException("failed before the race was cancelled");
        var failed = NewGate();
        var waiting = NewGate();

        var race = TaskScope.RaceAsync(new Func<CancellationToken, Task<int>>[]
        {
            async _ =>
            {
                await Task.Yield();
                failed.SetResult();
                throw failure;
            },
            async token =>
            {
                waiting.SetResult();
                await Task.Delay(Timeout.Infinite, token);
                return 2;
            },
        }, outer.Token);
        await Task.WhenAll(failed.Task, waiting.Task).WaitAsync(Patience);
        await outer.CancelAsync();

        await Settled(race);
        Assert.True(race.IsFaulted);
        Assert.Same(failure, Assert.Single(race.Exception!.InnerExceptions));
    }

    [Fact]
    public void No_contenders_throws_ArgumentException_synchronously()
    {
        var thrown = Assert.Throws<ArgumentException>(() => { _ = TaskScope.RaceAsync(Array.Empty<Func<CancellationToken, Task<int>>>()); });

        Assert.Equal("contenders", thrown.ParamName);
    }

    [Fact]
    public void Null_contenders_throw_ArgumentNullException()
    {
        var thrown = Assert.Throws<ArgumentNullException>(() => { _ = TaskScope.RaceAsync<int>(null!); });

        Assert.Equal("contenders", thrown.ParamName);
    }

    [Fact]
    public void A_null_contender_throws_ArgumentNullException()
    {
        var contenders = new Func<CancellationToken, Task<int>>[] { _ => Task.FromResult(1), null! };

        var thrown = Assert.Throws<ArgumentNullException>(() => { _ = TaskScope.RaceAsync(contenders); });

        Assert.Equal("contenders", thrown.ParamName);
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

    [Fact]
    public async Task Failures_of_losers_of_a_won_race_go_to_UnobservedFailure()
    {
        // Identified by the exception object itself: every race reports under the same scope name.
        var loserFailure = new InvalidOperationException("loser failed");
        var reported = new List<(string? ScopeName, Exception Failure)>();
        void OnUnobserved(object? sender, UnobservedScopeFailureEventArgs e)
        {
            if (ReferenceEquals(e.Exception, loserFailure))
            {
                lock (reported)
                {
                    reported.Add((e.ScopeName, e.Exception));
                }
            }
        }

        var loserFailed = NewGate();
        ScopeDiagnostics.UnobservedFailure += OnUnobserved;
        try
        {
            int winner = await TaskScope.RaceAsync(new Func<CancellationToken, Task<int>>[]
            {
                async _ =>
                {
                    await Task.Yield();
                    loserFailed.SetResult();
                    throw loserFailure;
                },
                async _ =>
                {
                    await loserFailed.Task;
                    return 7;
                },
            }).WaitAsync(Patience);

            Assert.Equal(7, winner);
            Assert.Equal([("TaskScope.RaceAsync", (Exception)loserFailure)], reported);
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= OnUnobserved;
        }
    }

    // Waits for the task to complete in any way, failing the test if it does not within the patience.
    private static async Task Settled(Task task)
    {
        await task.WaitAsync(Patience).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        Assert.True(task.IsCompleted, $"The task did not complete within {Patience}.");
    }

    private sealed class Resource : IDisposable
    {
        private int _disposals;

        public int Disposals => Volatile.Read(ref _disposals);

        public void Dispose() => Interlocked.Increment(ref _disposals);
    }

    private sealed class AsyncResource : IAsyncDisposable
    {
        private int _disposals;

        public int Disposals => Volatile.Read(ref _disposals);

        public ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref _disposals);
            return ValueTask.CompletedTask;
        }
    }
}
