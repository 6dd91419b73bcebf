using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary>64 renters sharing 8 items, each renting and returning a fixed number of times; time per rent.</summary>
[MemoryDiagnoser]
public class AsyncPoolContentionBenchmarks
{
    private const int Renters = 64;
    private const int Items = 8;
    private const int RentsPerRenter = 200;
    private ChannelPool<PooledItem> _channelPool = null!;
    private SemaphorePool<PooledItem> _semaphorePool = null!;
    private AsyncPool<PooledItem> _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        var items = Enumerable.Range(0, Items).Select(_ => new PooledItem()).ToArray();
        _channelPool = new ChannelPool<PooledItem>(items);
        _semaphorePool = new SemaphorePool<PooledItem>(Enumerable.Range(0, Items).Select(_ => new PooledItem()).ToArray());
        _pool = new AsyncPool<PooledItem>(_ => new ValueTask<PooledItem>(new PooledItem()), new AsyncPoolOptions<PooledItem> { MaxSize = Items });
    }

    [GlobalCleanup]
    public void Cleanup() => _pool.DisposeAsync().AsTask().Wait();

    [Benchmark(Baseline = true, OperationsPerInvoke = Renters * RentsPerRenter)]
    public Task ChannelPool() => RunRenters(async () =>
    {
        for (int i = 0; i < RentsPerRenter; i++)
        {
            var item = await _channelPool.RentAsync();
            await Task.Yield();
            _channelPool.Return(item);
        }
    });

    [Benchmark(OperationsPerInvoke = Renters * RentsPerRenter)]
    public Task SemaphorePool() => RunRenters(async () =>
    {
        for (int i = 0; i < RentsPerRenter; i++)
        {
            var item = await _semaphorePool.RentAsync();
            await Task.Yield();
            _semaphorePool.Return(item);
        }
    });

    [Benchmark(OperationsPerInvoke = Renters * RentsPerRenter)]
    public Task AsyncPool() => RunRenters(async () =>
    {
        for (int i = 0; i < RentsPerRenter; i++)
        {
            await using var lease = await _pool.RentAsync();
            await Task.Yield();
        }
    });

    private static Task RunRenters(Func<Task> renter)
    {
        var renters = new Task[Renters];
        for (int i = 0; i < Renters; i++)
        {
            renters[i] = Task.Run(renter);
        }

        return Task.WhenAll(renters);
    }
}
