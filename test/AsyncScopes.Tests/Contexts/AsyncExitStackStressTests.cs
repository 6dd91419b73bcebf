namespace AsyncScopes.Tests.Contexts;

/// <summary>
/// Registration on an exit stack is thread-safe: threads that register at once each keep every exit they registered,
/// and a registration racing with the stack's closing is either run once or refused, never lost. Bounded rounds; the
/// threads of a round are dedicated threads that spin until all of them are ready, so that they do register at once.
/// </summary>
public sealed class AsyncExitStackStressTests
{
    private const int Rounds = 20;
    private const int Threads = 4;
    private const int PushesPerThread = 2000;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Exits_registered_from_several_threads_at_once_are_all_kept_and_each_runs_once_in_reverse_order()
    {
        for (int round = 0; round < Rounds; round++)
        {
            var stack = new AsyncExitStack();
            var ran = new List<(int Thread, int Index)>();
            var pushers = AtOnce(Threads, thread =>
            {
                for (int i = 0; i < PushesPerThread; i++)
                {
                    int index = i;
                    if (i % 2 == 0)
                    {
                        stack.Push(new Disposal(() => ran.Add((thread, index))));
                    }
                    else
                    {
                        stack.Defer(() =>
                        {
                            ran.Add((thread, index));
                            return ValueTask.CompletedTask;
                        });
                    }
                }
            });

            await Task.WhenAll(pushers).WaitAsync(Patience);
            Assert.Equal(Threads * PushesPerThread, stack.Count);

            stack.Complete();
            await stack.DisposeAsync().AsTask().WaitAsync(Patience); // exits run one after another: the list needs no lock

            Assert.Equal(Threads * PushesPerThread, ran.Count);
            Assert.Equal(Threads * PushesPerThread, ran.Distinct().Count());
            for (int thread = 0; thread < Threads; thread++)
            {
                int current = thread;
                var order = ran.Where(exit => exit.Thread == current).Select(exit => exit.Index).ToList();
                Assert.Equal(Enumerable.Range(0, PushesPerThread).Reverse(), order);
            }

            Assert.Equal(0, stack.Count);
        }
    }

    [Fact]
    public async Task A_registration_racing_with_disposal_is_either_run_once_or_refused()
    {
        const int MaxPushesPerThread = 50_000;
        int refusedInAll = 0;
        for (int round = 0; round < Rounds; round++)
        {
            var stack = new AsyncExitStack();
            var runs = new int[Threads * MaxPushesPerThread];
            var registered = new bool[runs.Length];
            int registeredCount = 0;
            int disposeAfter = 1 + (round * 50);

            // The pushers register until they are refused; the last thread disposes the stack once a number of exits
            // that grows by round is registered, so that every round has both outcomes.
            var threads = AtOnce(Threads + 1, thread =>
            {
                if (thread == Threads)
                {
                    Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref registeredCount) >= disposeAfter, Patience), "nothing was registered");
                    stack.DisposeAsync().AsTask().Wait();
                    return;
                }

                for (int i = 0; i < MaxPushesPerThread; i++)
                {
                    int slot = (thread * MaxPushesPerThread) + i;
                    try
                    {
                        stack.PushDisposable(new SyncDisposal(() => Interlocked.Increment(ref runs[slot])));
                    }
                    catch (InvalidOperationException)
                    {
                        Interlocked.Increment(ref refusedInAll);
                        return; // refused: the stack is closing, and nothing was registered
                    }

                    registered[slot] = true;
                    Interlocked.Increment(ref registeredCount);
                }
            });

            await Task.WhenAll(threads).WaitAsync(Patience);

            for (int slot = 0; slot < runs.Length; slot++)
            {
                Assert.True(
                    runs[slot] == (registered[slot] ? 1 : 0),
                    $"round {round}: exit {slot} {(registered[slot] ? "registered" : "refused or never pushed")} ran {runs[slot]} times");
            }

            Assert.True(registeredCount >= disposeAfter, $"round {round}: {registeredCount} registered");
            Assert.Throws<InvalidOperationException>(() => stack.Defer(() => ValueTask.CompletedTask));
            Assert.Equal(0, stack.Count);
        }

        Assert.True(refusedInAll > 0, "no registration was ever refused: the race never happened");
    }

    // Runs work(0..count-1) on as many dedicated threads, each spinning until all are ready.
    private static Task[] AtOnce(int count, Action<int> work)
    {
        int ready = 0;
        return Enumerable.Range(0, count).Select(index =>
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var thread = new Thread(() =>
            {
                try
                {
                    Interlocked.Increment(ref ready);
                    Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref ready) == count, Patience), "the other threads never started");
                    work(index);
                    done.SetResult();
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            });
            thread.Start();
            return done.Task;
        }).ToArray();
    }

    private sealed class Disposal(Action onDispose) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            onDispose();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class SyncDisposal(Action onDispose) : IDisposable
    {
        public void Dispose() => onDispose();
    }
}
