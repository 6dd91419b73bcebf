using System.Collections.Concurrent;
using System.Threading.Channels;

namespace AsyncScopes.Benchmarks;

/// <summary>A pool over a channel, as Npgsql's: idle items in a channel, renters wait on it.</summary>
internal sealed class ChannelPool<T>
    where T : class
{
    private readonly Channel<T> _idle = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });

    public ChannelPool(IEnumerable<T> items)
    {
        foreach (var item in items)
        {
            _idle.Writer.TryWrite(item);
        }
    }

    public ValueTask<T> RentAsync(CancellationToken cancellationToken = default) =>
        _idle.Reader.TryRead(out var item) ? new(item) : _idle.Reader.ReadAsync(cancellationToken);

    public void Return(T item) => _idle.Writer.TryWrite(item);
}

/// <summary>A pool over a semaphore and a concurrent queue.</summary>
internal sealed class SemaphorePool<T>
    where T : class
{
    private readonly SemaphoreSlim _available;
    private readonly ConcurrentQueue<T> _idle;

    public SemaphorePool(IReadOnlyCollection<T> items)
    {
        _idle = new ConcurrentQueue<T>(items);
        _available = new SemaphoreSlim(items.Count, items.Count);
    }

    public ValueTask<T> RentAsync(CancellationToken cancellationToken = default)
    {
        if (_available.Wait(0, CancellationToken.None))
        {
            return new(Take());
        }

        return WaitAsync(cancellationToken);
    }

    public void Return(T item)
    {
        _idle.Enqueue(item);
        _available.Release();
    }

    private async ValueTask<T> WaitAsync(CancellationToken cancellationToken)
    {
        await _available.WaitAsync(cancellationToken).ConfigureAwait(false);
        return Take();
    }

    private T Take() => _idle.TryDequeue(out var item) ? item : throw new InvalidOperationException("A permit without an item.");
}

internal sealed class PooledItem
{
    public int Uses;
}
