using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary>An exit stack of 10 resources against 10 nested <c>await using</c>.</summary>
[MemoryDiagnoser]
public class AsyncExitStackBenchmarks
{
    private static readonly Resource[] Resources = Enumerable.Range(0, 10).Select(_ => new Resource()).ToArray();

    [Benchmark(Baseline = true)]
    public async Task NestedAwaitUsing()
    {
        await using (Resources[0])
        await using (Resources[1])
        await using (Resources[2])
        await using (Resources[3])
        await using (Resources[4])
        await using (Resources[5])
        await using (Resources[6])
        await using (Resources[7])
        await using (Resources[8])
        await using (Resources[9])
        {
        }
    }

    [Benchmark]
    public Task RunAsync() => AsyncExitStack.RunAsync(static (stack, _) =>
    {
        foreach (var resource in Resources)
        {
            stack.Push(resource);
        }

        return Task.CompletedTask;
    });

    [Benchmark]
    public async Task AwaitUsingWithComplete()
    {
        await using var stack = new AsyncExitStack();
        foreach (var resource in Resources)
        {
            stack.Push(resource);
        }

        stack.Complete();
    }

    private sealed class Resource : IAsyncDisposable
    {
        public int Disposals;

        public ValueTask DisposeAsync()
        {
            Disposals++;
            return ValueTask.CompletedTask;
        }
    }
}
