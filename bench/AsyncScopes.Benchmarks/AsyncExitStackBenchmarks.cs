using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary>An exit stack of 10 resources against 10 nested <c>await using</c>.</summary>
[MemoryDiagnoser]
public class AsyncExitStackBenchmarks
{
    private static readonly Resource[] Resources = Enumerable.Range(0, 10).Select(_ => new Resource()).ToArray();

    private int _state;

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

    /// <summary>
    /// Not a way to hold resources, and not a target: the floor under any registration that is safe from several
    /// threads at once, one atomic compare-and-swap per resource (and a plain write to release it), as
    /// <see cref="AsyncExitStack"/> makes for each <c>Push</c>. Nested <c>await using</c> registers nothing at run
    /// time, so its cost is the ten disposals alone.
    /// </summary>
    [Benchmark]
    public int TenCompareAndSwaps()
    {
        int held = 0;
        for (int i = 0; i < Resources.Length; i++)
        {
            if (Interlocked.CompareExchange(ref _state, 1, 0) == 0)
            {
                held++;
                Volatile.Write(ref _state, 0);
            }
        }

        return held;
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
