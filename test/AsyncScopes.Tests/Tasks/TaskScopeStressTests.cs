using System.Collections.Concurrent;

namespace AsyncScopes.Tests.Tasks;

/// <summary>
/// Seeded random trees of nested scopes with random failures, cancellation, stops (quiet, and two-phase with a grace),
/// children started with StartAsync (ready, or failing before ready), and early disposal. After each tree:
/// every child that started has finished, no child task is left running, and every failure appears exactly once,
/// either in what the root surfaced or in <see cref="ScopeDiagnostics.UnobservedFailure"/>.
/// </summary>
public sealed class TaskScopeStressTests
{
    private const int Trees = 1000;
    private const int Seed = 4242;
    private const int MaxDepth = 4;
    private const int MaxChildren = 50;
    private const int LeafBudget = 120;

    [Fact]
    public async Task Random_trees_of_scopes_lose_nothing_and_leave_nothing_running()
    {
        string runId = Guid.NewGuid().ToString("N");
        var events = new ConcurrentQueue<Exception>();
        void OnUnobserved(object? sender, UnobservedScopeFailureEventArgs e)
        {
            if (e.ScopeName?.StartsWith(runId, StringComparison.Ordinal) == true)
            {
                events.Enqueue(e.Exception);
            }
        }

        var totals = new Totals();
        ScopeDiagnostics.UnobservedFailure += OnUnobserved;
        try
        {
            for (int tree = 0; tree < Trees; tree++)
            {
                var plan = ScopePlan.Generate(new Random(Seed + tree), depth: 1, new int[] { LeafBudget });
                var run = new TreeRun($"{runId}/{tree}");

                Task root = await TreeRun.OutcomeAsync(run.ExecuteAsync(plan, "root", run.RootToken));

                var surfaced = Flatten(root.Exception).ToList();
                var unobserved = new List<Exception>();
                while (events.TryDequeue(out var e))
                {
                    unobserved.AddRange(Flatten(e));
                }

                string where = $"tree {tree} (seed {Seed + tree})";
                Assert.True(run.Started == run.Finished, $"{where}: {run.Started} children started, {run.Finished} finished");
                Assert.All(run.ChildTasks, t => Assert.True(t.IsCompleted, $"{where}: a child task is still running"));
                var thrown = run.Thrown.ToList();
                var seen = surfaced.Concat(unobserved).ToList();
                foreach (var failure in thrown)
                {
                    int count = seen.Count(e => ReferenceEquals(e, failure));
                    Assert.True(count == 1, $"{where}: '{failure.Message}' surfaced {count} times");
                }

                Assert.True(seen.Count == thrown.Count, $"{where}: {seen.Count} failures surfaced for {thrown.Count} thrown: " +
                    string.Join(", ", seen.Where(e => !thrown.Contains(e)).Select(e => e.GetType().Name + ": " + e.Message)));

                totals.Add(run, surfaced.Count, unobserved.Count, root);
                run.Dispose();
            }
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= OnUnobserved;
        }

        // The generator must reach every situation, or the property says little.
        Assert.True(totals.Leaves > Trees * 10, $"{totals.Leaves} leaves ran");
        Assert.True(totals.Surfaced > Trees / 10, $"{totals.Surfaced} failures surfaced at roots");
        Assert.True(totals.Unobserved > Trees / 20, $"{totals.Unobserved} failures went to UnobservedFailure");
        Assert.True(totals.CancelledRoots > Trees / 50, $"{totals.CancelledRoots} roots ended cancelled");
        Assert.True(totals.CleanRoots > Trees / 50, $"{totals.CleanRoots} roots ended cleanly");
        Assert.True(totals.StoppedScopes > Trees / 20, $"{totals.StoppedScopes} scopes were stopped");
    }

    private static IEnumerable<Exception> Flatten(Exception? exception) => exception switch
    {
        null => [],
        AggregateException aggregate => aggregate.InnerExceptions.SelectMany(Flatten),
        _ => [exception],
    };

    private enum ScopeForm
    {
        RunAsync,
        Join,
        DisposeEarly,
        ThrowBeforeJoin,
    }

    private enum LeafAction
    {
        Succeed,
        Fail,
        CancelScope,
        CancelRoot,
        Spawn,
        StopScope,
        StopScopeWithGrace,
        StartReady,
        StartFailingBeforeReady,
    }

    private sealed class Totals
    {
        public long Leaves { get; private set; }

        public long Surfaced { get; private set; }

        public long Unobserved { get; private set; }

        public int CancelledRoots { get; private set; }

        public int CleanRoots { get; private set; }

        public int StoppedScopes { get; private set; }

        public void Add(TreeRun run, int surfaced, int unobserved, Task root)
        {
            StoppedScopes += run.Stopped;
            Leaves += run.Started;
            Surfaced += surfaced;
            Unobserved += unobserved;
            CancelledRoots += root.IsCanceled ? 1 : 0;
            CleanRoots += root.IsCompletedSuccessfully ? 1 : 0;
        }
    }

    private abstract record ChildPlan;

    private sealed record LeafPlan(LeafAction Action, int Yields, List<LeafPlan> Spawned) : ChildPlan;

    private sealed record NestedPlan(ScopePlan Scope) : ChildPlan;

    private sealed record ScopePlan(ScopeForm Form, TaskScopeFailureMode Mode, int MaxConcurrency, bool BodyThrows, List<ChildPlan> Children)
    {
        public static ScopePlan Generate(Random random, int depth, int[] budget)
        {
            var form = (ScopeForm)random.Next(4);
            var mode = random.Next(2) == 0 ? TaskScopeFailureMode.CancelOnFirstFailure : TaskScopeFailureMode.WaitForAll;
            int maxConcurrency = random.Next(3) == 0 ? random.Next(1, 6) : 0;
            int count = Math.Min(random.Next(MaxChildren + 1), budget[0]);
            var children = new List<ChildPlan>(count);
            for (int i = 0; i < count && budget[0] > 0; i++)
            {
                if (depth < MaxDepth && random.Next(8) == 0)
                {
                    children.Add(new NestedPlan(Generate(random, depth + 1, budget)));
                }
                else
                {
                    budget[0]--;

                    // A child that awaits StartAsync while it holds the last slot of a bounded scope waits forever
                    // (the started child waits for that slot): StartAsync only where the scope is unbounded.
                    children.Add(Leaf(random, budget, allowSpawn: true, allowStart: maxConcurrency == 0));
                }
            }

            return new ScopePlan(form, mode, maxConcurrency, random.Next(6) == 0, children);
        }

        private static LeafPlan Leaf(Random random, int[] budget, bool allowSpawn, bool allowStart)
        {
            int roll = random.Next(100);
            var action = roll switch
            {
                < 15 => LeafAction.Fail,
                < 18 => LeafAction.CancelScope,
                < 19 => LeafAction.CancelRoot,
                < 24 when allowSpawn => LeafAction.Spawn,
                < 26 => LeafAction.StopScope,
                < 28 => LeafAction.StopScopeWithGrace,
                < 31 when allowStart => LeafAction.StartReady,
                < 33 when allowStart => LeafAction.StartFailingBeforeReady,
                _ => LeafAction.Succeed,
            };
            var spawned = new List<LeafPlan>();
            if (action == LeafAction.Spawn)
            {
                for (int i = random.Next(1, 4); i > 0 && budget[0] > 0; i--)
                {
                    budget[0]--;
                    spawned.Add(Leaf(random, budget, allowSpawn: false, allowStart));
                }
            }

            return new LeafPlan(action, random.Next(4), spawned);
        }
    }

    /// <summary>Executes one tree and records what happened in it.</summary>
    private sealed class TreeRun(string name) : IDisposable
    {
        private readonly CancellationTokenSource _root = new();
        private int _started;
        private int _finished;
        private int _stopped;

        public CancellationToken RootToken => _root.Token;

        public int Started => Volatile.Read(ref _started);

        public int Finished => Volatile.Read(ref _finished);

        public int Stopped => Volatile.Read(ref _stopped);

        public ConcurrentBag<Exception> Thrown { get; } = [];

        public ConcurrentBag<Task> ChildTasks { get; } = [];

        public void Dispose() => _root.Dispose();

        // The outcome of a scope as its owner sees it: every failure, not only the root cause that await rethrows.
        public static async Task<Task> OutcomeAsync(Task<Task> execution)
        {
            await ((Task)execution).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Assert.True(execution.IsCompleted, "a scope did not finish within 60 seconds");
            return execution.IsCompletedSuccessfully ? execution.Result : execution;
        }

        public async Task<Task> ExecuteAsync(ScopePlan plan, string path, CancellationToken outer)
        {
            var options = new TaskScopeOptions
            {
                FailureMode = plan.Mode,
                MaxConcurrency = plan.MaxConcurrency,
                Name = $"{name}/{path}",
            };

            switch (plan.Form)
            {
                case ScopeForm.RunAsync:
                    Task run = TaskScope.RunAsync(async scope =>
                    {
                        StartChildren(scope, plan, path);
                        await Task.Yield();
                        if (plan.BodyThrows)
                        {
                            throw Fail($"{path}: body");
                        }
                    }, outer, options);
                    await run.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    return run;

                case ScopeForm.Join:
                    await using (var scope = new TaskScope(options, outer))
                    {
                        StartChildren(scope, plan, path);
                        Task join = scope.JoinAsync();
                        await join.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                        return join;
                    }

                case ScopeForm.DisposeEarly:
                    await using (var scope = new TaskScope(options, outer))
                    {
                        StartChildren(scope, plan, path);
                        await Task.Yield();
                    }

                    return Task.CompletedTask;

                default:
                    await using (var scope = new TaskScope(options, outer))
                    {
                        StartChildren(scope, plan, path);
                        await Task.Yield();
                        throw Fail($"{path}: body before join");
                    }
            }
        }

        private void StartChildren(TaskScope scope, ScopePlan plan, string path)
        {
            for (int i = 0; i < plan.Children.Count; i++)
            {
                string childPath = $"{path}.{i}";
                ChildTasks.Add(plan.Children[i] switch
                {
                    NestedPlan nested => scope.Start(token => RunNestedAsync(nested.Scope, childPath, token)),
                    LeafPlan leaf => scope.Start(token => RunLeafAsync(scope, leaf, childPath, token)),
                    _ => throw new InvalidOperationException("unknown plan"),
                });
            }
        }

        private async Task RunNestedAsync(ScopePlan plan, string path, CancellationToken token)
        {
            // Surface every failure of the nested scope, not only its root cause, so that the root can account for all.
            Task inner = await OutcomeAsync(ExecuteAsync(plan, path, token));
            if (inner.Exception is { } failures)
            {
                throw failures;
            }

            if (inner.IsCanceled)
            {
                token.ThrowIfCancellationRequested();
            }
        }

        private async Task RunLeafAsync(TaskScope scope, LeafPlan leaf, string path, CancellationToken token)
        {
            Interlocked.Increment(ref _started);
            try
            {
                for (int i = 0; i < leaf.Yields; i++)
                {
                    token.ThrowIfCancellationRequested();
                    await Task.Yield();
                }

                switch (leaf.Action)
                {
                    case LeafAction.Fail:
                        throw Fail(path);
                    case LeafAction.CancelScope:
                        scope.Cancel();
                        break;
                    case LeafAction.CancelRoot:
                        await _root.CancelAsync();
                        break;
                    case LeafAction.StopScope:
                        Interlocked.Increment(ref _stopped);
                        scope.Stop();
                        break;
                    case LeafAction.StopScopeWithGrace:
                        Interlocked.Increment(ref _stopped);
                        scope.Stop(TimeSpan.FromMilliseconds(1));
                        break;
                    case LeafAction.StartReady:
                        // A child that signals ready and goes on until Stopping (or Token) fires, then ends.
                        var ready = scope.StartAsync(
                            async (signal, t) =>
                            {
                                signal();
                                await Task.Yield();
                            },
                            cancellationToken: token);
                        ChildTasks.Add(ready);
                        await ready;
                        break;
                    case LeafAction.StartFailingBeforeReady:
                        // Its failure is this leaf's to surface: StartAsync hands it over, the scope does not see it.
                        var failing = scope.StartAsync((_, _) => Task.FromException(Fail($"{path}: before ready")), cancellationToken: token);
                        ChildTasks.Add(failing);
                        await failing;
                        break;
                    case LeafAction.Spawn:
                        // A running child keeps its scope open, so starting siblings here never meets a closed scope.
                        for (int i = 0; i < leaf.Spawned.Count; i++)
                        {
                            var spawned = leaf.Spawned[i];
                            string spawnedPath = $"{path}+{i}";
                            ChildTasks.Add(scope.Start(t => RunLeafAsync(scope, spawned, spawnedPath, t)));
                        }

                        break;
                }
            }
            finally
            {
                Interlocked.Increment(ref _finished);
            }
        }

        private InvalidOperationException Fail(string what)
        {
            var failure = new InvalidOperationException(what);
            Thrown.Add(failure);
            return failure;
        }
    }
}
