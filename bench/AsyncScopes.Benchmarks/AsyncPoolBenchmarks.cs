using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary>Uncontended rent and return against a Channel pool (Npgsql's design) and a SemaphoreSlim pool.</summary>
[MemoryDiagnoser]
public class AsyncPoolBenchmarks
{
    private const int Operations = 1000;
    private ChannelPool<PooledItem> _channelPool = null!;
    private SemaphorePool<PooledItem> _semaphorePool = null!;
    private AsyncPool<PooledItem> _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        _channelPool = new ChannelPool<PooledItem>([new PooledItem()]);
        _semaphorePool = new SemaphorePool<PooledItem>([new PooledItem()]);
        _pool = new AsyncPool<PooledItem>(_ => new ValueTask<PooledItem>(new PooledItem()), new AsyncPoolOptions<PooledItem> { MaxSize = 1 });
        _pool.RentAsync().AsTask().Result.DisposeAsync().AsTask().Wait();
    }

    [GlobalCleanup]
    public void Cleanup() => _pool.DisposeAsync().AsTask().Wait();

    [Benchmark(Baseline = true, OperationsPerInvoke = Operations)]
    public async Task ChannelPool()
    {
        for (int i = 0; i < Operations; i++)
        {
            var item = await _channelPool.RentAsync();
            item.Uses++;
            _channelPool.Return(item);
        }
    }

    [Benchmark(OperationsPerInvoke = Operations)]
    public async Task SemaphorePool()
    {
        for (int i = 0; i < Operations; i++)
        {
            var item = await _semaphorePool.RentAsync();
            item.Uses++;
            _semaphorePool.Return(item);
        }
    }

    [Benchmark(OperationsPerInvoke = Operations)]
    public async Task AsyncPool()
    {
        for (int i = 0; i < Operations; i++)
        {
            await using var lease = await _pool.RentAsync();
            lease.Value.Uses++;
        }
    }
}
