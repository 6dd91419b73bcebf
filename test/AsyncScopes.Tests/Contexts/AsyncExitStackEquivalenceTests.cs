using System.Globalization;
using System.Text;

namespace AsyncScopes.Tests.Contexts;

/// <summary>
/// The main property of AsyncExitStack: a stack with exits e1..en behaves exactly like n nested WithAsync calls with
/// e1 outermost (same exits called, same order, same arguments, same final outcome), checked on seeded random cases.
/// </summary>
public sealed class AsyncExitStackEquivalenceTests
{
    private const int Cases = 3000;
    private const int Seed = 20261124;
    private const int MaxExits = 6;

    [Fact]
    public async Task A_stack_behaves_exactly_like_nested_WithAsync()
    {
        var outcomes = new Dictionary<string, int>();
        for (int i = 0; i < Cases; i++)
        {
            // One seed per case, so that a failure names a case that can be replayed alone.
            var scenario = Scenario.Generate(new Random(Seed + i));

            var nested = await RunNestedAsync(scenario);
            var stacked = await RunStackAsync(scenario);

            // Equal runs must also be expected ones: exits see, and the run ends with, only the body's and the exits' own exceptions.
            Assert.False(
                nested.Outcome.Contains("unexpected:", StringComparison.Ordinal) || nested.Calls.Contains("unexpected:", StringComparison.Ordinal),
                $"case {i} (seed {Seed + i}): {scenario}\n  nested WithAsync: {nested}");
            Assert.True(
                nested == stacked,
                $"case {i} (seed {Seed + i}): {scenario}\n  nested WithAsync: {nested}\n  AsyncExitStack.RunAsync: {stacked}");

            if (scenario.BodyThrows)
            {
                continue;
            }

            // The await-using form, completed, folds the same exits over no exception.
            var disposed = await RunDisposeAsync(scenario);
            bool returned = nested.Outcome.StartsWith("result:", StringComparison.Ordinal) || nested.Outcome.StartsWith("suppressed:", StringComparison.Ordinal);
            var expected = nested with { Outcome = returned ? "completed" : nested.Outcome };
            Assert.True(
                expected == disposed,
                $"case {i} (seed {Seed + i}): {scenario}\n  nested WithAsync: {expected}\n  await using + Complete: {disposed}");

            string kind = nested.Outcome.Split(':')[0];
            outcomes[kind] = outcomes.GetValueOrDefault(kind) + 1;
        }

        // The generator must reach every kind of outcome, or the property says little.
        Assert.All(["result", "suppressed", "error", "combined"], kind => Assert.True(
            outcomes.GetValueOrDefault(kind) > Cases / 50,
            $"only {outcomes.GetValueOrDefault(kind)} completed-body cases ended as '{kind}'"));
    }

    private static async Task<Run> RunNestedAsync(Scenario scenario)
    {
        var log = new List<string>();
        var managers = scenario.Exits.Select((exit, index) => new ScenarioManager(exit, index, log, scenario)).ToArray();

        Task<int> RunFrom(int depth, CancellationToken ct) => depth == managers.Length
            ? scenario.RunBodyAsync()
            : managers[depth].WithAsync((_, inner) => RunFrom(depth + 1, inner), ct);

        string outcome;
        try
        {
            int result = await RunFrom(0, CancellationToken.None);
            outcome = Describe(result, scenario);
        }
        catch (Exception e)
        {
            outcome = scenario.Describe(e);
        }

        return new Run(string.Join(" ", log), outcome);
    }

    private static async Task<Run> RunStackAsync(Scenario scenario)
    {
        var log = new List<string>();
        string outcome;
        try
        {
            int result = await AsyncExitStack.RunAsync(async (stack, ct) =>
            {
                for (int i = 0; i < scenario.Exits.Count; i++)
                {
                    await RegisterAsync(stack, new ScenarioManager(scenario.Exits[i], i, log, scenario), ct);
                }

                return await scenario.RunBodyAsync();
            });
            outcome = Describe(result, scenario);
        }
        catch (Exception e)
        {
            outcome = scenario.Describe(e);
        }

        return new Run(string.Join(" ", log), outcome);
    }

    private static async Task<Run> RunDisposeAsync(Scenario scenario)
    {
        var log = new List<string>();
        string outcome = "completed";
        try
        {
            await using var stack = new AsyncExitStack();
            for (int i = 0; i < scenario.Exits.Count; i++)
            {
                await RegisterAsync(stack, new ScenarioManager(scenario.Exits[i], i, log, scenario), CancellationToken.None);
            }

            await scenario.RunBodyAsync();
            stack.Complete();
        }
        catch (Exception e)
        {
            outcome = scenario.Describe(e);
        }

        return new Run(string.Join(" ", log), outcome);
    }

    private static async Task RegisterAsync(AsyncExitStack stack, ScenarioManager manager, CancellationToken ct)
    {
        switch (manager.Exit.Kind)
        {
            case ExitKind.EnterAsync:
                await stack.EnterAsync(manager, ct);
                break;
            case ExitKind.PushExit:
                stack.PushExit(manager.ExitAsync);
                break;
            case ExitKind.Defer:
                stack.Defer(async () => await manager.ExitAsync(null));
                break;
            case ExitKind.Push:
                stack.Push(new AsyncDisposableExit(manager));
                break;
            default:
                stack.PushDisposable(new DisposableExit(manager));
                break;
        }
    }

    private static string Describe(int result, Scenario scenario) =>
        result == scenario.Result ? "result:" + result.ToString(CultureInfo.InvariantCulture) : "suppressed:" + result.ToString(CultureInfo.InvariantCulture);

    private readonly record struct Run(string Calls, string Outcome);

    private enum ExitKind
    {
        EnterAsync,
        PushExit,
        Defer,
        Push,
        PushDisposable,
    }

    private sealed record ExitSpec(ExitKind Kind, ExitBehavior Behavior, bool Yields, Exception Error)
    {
        // Defer, Push and PushDisposable neither see the exception nor suppress.
        public bool SeesException => Kind is ExitKind.EnterAsync or ExitKind.PushExit;
    }

    private sealed class Scenario
    {
        private readonly Exception _bodyError = new FormatException("body");

        private Scenario(List<ExitSpec> exits, bool bodyThrows, bool bodyYields, int result)
        {
            Exits = exits;
            BodyThrows = bodyThrows;
            BodyYields = bodyYields;
            Result = result;
        }

        public List<ExitSpec> Exits { get; }

        public bool BodyThrows { get; }

        public bool BodyYields { get; }

        public int Result { get; }

        public static Scenario Generate(Random random)
        {
            int count = random.Next(MaxExits + 1);
            var exits = new List<ExitSpec>(count);
            for (int i = 0; i < count; i++)
            {
                var kind = (ExitKind)random.Next(5);
                bool seesException = kind is ExitKind.EnterAsync or ExitKind.PushExit;
                var behavior = seesException
                    ? (ExitBehavior)random.Next(4)
                    : random.Next(2) == 0 ? ExitBehavior.ReturnFalse : ExitBehavior.Throw;
                // A synchronous Dispose cannot await, so a PushDisposable exit never yields.
                bool yields = random.Next(2) == 0 && kind != ExitKind.PushDisposable;
                exits.Add(new ExitSpec(kind, behavior, yields, new InvalidOperationException("exit " + i.ToString(CultureInfo.InvariantCulture))));
            }

            return new Scenario(exits, random.Next(2) == 0, random.Next(2) == 0, random.Next(1, 1000));
        }

        public async Task<int> RunBodyAsync()
        {
            if (BodyYields)
            {
                await Task.Yield();
            }

            return BodyThrows ? throw _bodyError : Result;
        }

        public string Describe(Exception? exception)
        {
            switch (exception)
            {
                case null:
                    return "none";
                case ScopeExitException combined:
                    return "combined:[" + string.Join(",", combined.InnerExceptions.Select(Describe)) + "]";
                default:
                    if (ReferenceEquals(exception, _bodyError))
                    {
                        return "error:body";
                    }

                    for (int i = 0; i < Exits.Count; i++)
                    {
                        if (ReferenceEquals(exception, Exits[i].Error))
                        {
                            return "error:exit" + i.ToString(CultureInfo.InvariantCulture);
                        }
                    }

                    return "unexpected:" + exception.GetType().Name + ":" + exception.Message;
            }
        }

        public override string ToString()
        {
            var text = new StringBuilder();
            foreach (var exit in Exits)
            {
                text.Append(CultureInfo.InvariantCulture, $"{exit.Kind}/{exit.Behavior}{(exit.Yields ? "/yield" : string.Empty)} ");
            }

            return text.Append(BodyThrows ? "body throws" : "body returns").ToString();
        }
    }

    /// <summary>One exit of a scenario, as a manager; it logs what it saw.</summary>
    private sealed class ScenarioManager(ExitSpec exit, int index, List<string> log, Scenario scenario) : IAsyncContextManager<int>
    {
        public ExitSpec Exit => exit;

        public ValueTask<int> EnterAsync(CancellationToken cancellationToken = default) => new(index);

        public async ValueTask<bool> ExitAsync(Exception? exception)
        {
            log.Add(exit.SeesException ? $"e{index}({scenario.Describe(exception)})" : $"e{index}");
            if (exit.Yields)
            {
                await Task.Yield();
            }

            // Exits that cannot see the exception cannot act on it either.
            Exception? seen = exit.SeesException ? exception : null;
            return exit.Behavior switch
            {
                ExitBehavior.ReturnFalse => false,
                ExitBehavior.ReturnTrue => true,
                ExitBehavior.RethrowSeen => throw (seen ?? exit.Error),
                _ => throw exit.Error,
            };
        }
    }

    private sealed class AsyncDisposableExit(ScenarioManager manager) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await manager.ExitAsync(null);
    }

    private sealed class DisposableExit(ScenarioManager manager) : IDisposable
    {
        public void Dispose()
        {
            // The generator never makes this kind yield, so the exit has run when ExitAsync returns; blocking on it
            // instead would hide a generator bug behind a thread-pool wait.
            var pending = manager.ExitAsync(null);
            if (!pending.IsCompleted)
            {
                throw new InvalidOperationException("A PushDisposable exit yielded: a synchronous Dispose cannot await it.");
            }

            pending.GetAwaiter().GetResult();
        }
    }
}
