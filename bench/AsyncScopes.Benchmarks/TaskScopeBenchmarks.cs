using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary>A scope of 1,000 trivial children, joined, against Task.Run + Task.WhenAll with the same guarantees
/// written by hand: a linked token cancelled on the first failure, and every exception collected.</summary>
[MemoryDiagnoser]
public class TaskScopeBenchmarks
{
    private const int Children = 1000;

    [Benchmark(Baseline = true)]
    public async Task HandWritten()
    {
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(CancellationToken.None);
        var failures = new List<Exception>();
        var tasks = new Task[Children];
        for (int i = 0; i < Children; i++)
        {
            tasks[i] = Task.Run(async () =>
            {
                try
                {
                    await Child(cancellation.Token);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
                {
                    lock (failures)
                    {
                        failures.Add(e);
                    }

                    await cancellation.CancelAsync();
                }
            });
        }

        await Task.WhenAll(tasks);
        if (failures.Count > 0)
        {
            throw new AggregateException(failures);
        }
    }

    [Benchmark]
    public async Task Scope()
    {
        await using var scope = new TaskScope();
        for (int i = 0; i < Children; i++)
        {
            _ = scope.Start(Child);
        }

        await scope.JoinAsync();
    }

    private static Task Child(CancellationToken cancellationToken) => Task.CompletedTask;
}
