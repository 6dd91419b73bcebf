using System.Collections.Concurrent;

namespace AsyncScopes.Tests.Pooling;

/// <summary>Shared bounds and helpers of the pool tests.</summary>
internal static class PoolTest
{
    /// <summary>Bounds every wait on the library, so that a bug fails the test instead of hanging the run.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>A name no other test uses: diagnostics events are process-wide and tests run in parallel.</summary>
    public static string UniqueName() => "pool-" + Guid.NewGuid().ToString("N");

    public static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // For a state the pool reaches on another thread with no event to await: polls the condition, yielding, and fails
    // after Patience instead of hanging.
    public static async Task UntilAsync(Func<bool> condition, string what)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(waited.Elapsed < Patience, $"{what} did not happen within {Patience}");
            await Task.Yield();
        }
    }

    public static AsyncPool<Item> NewPool(AsyncPoolOptions<Item>? options = null) =>
        new(static _ => ValueTask.FromResult(new Item()), options);

    public static Task<PoolLease<T>> RentWithinAsync<T>(this AsyncPool<T> pool, CancellationToken cancellationToken = default)
        where T : class =>
        pool.RentAsync(cancellationToken).AsTask().WaitAsync(Patience, CancellationToken.None);

    public static Task DisposeWithinAsync<T>(this AsyncPool<T> pool)
        where T : class =>
        pool.DisposeAsync().AsTask().WaitAsync(Patience);

    public static Task ReturnWithinAsync<T>(this PoolLease<T> lease)
        where T : class =>
        lease.DisposeAsync().AsTask().WaitAsync(Patience);
}

/// <summary>A pooled item that counts how often it was destroyed.</summary>
internal sealed class Item
{
    private static int _nextId;
    private int _destroyed;
    private int _leased;

    public int Id { get; } = Interlocked.Increment(ref _nextId);

    public int DestroyCount => Volatile.Read(ref _destroyed);

    public bool IsLeased => Volatile.Read(ref _leased) == 1;

    /// <summary>Counts a destruction; returns how many there were, this one included.</summary>
    public int MarkDestroyed() => Interlocked.Increment(ref _destroyed);

    /// <summary>Marks the item held by a renter; false if someone else already holds it.</summary>
    public bool TryMarkLeased() => Interlocked.Exchange(ref _leased, 1) == 0;

    public void MarkReturned() => Volatile.Write(ref _leased, 0);

    public override string ToString() => $"Item {Id}";
}

/// <summary>An item with both disposal interfaces: the pool's default destroy must prefer the asynchronous one.</summary>
internal sealed class AsyncDisposableItem : IAsyncDisposable, IDisposable
{
    private int _asyncDisposals;
    private int _disposals;

    public int AsyncDisposals => Volatile.Read(ref _asyncDisposals);

    public int Disposals => Volatile.Read(ref _disposals);

    public ValueTask DisposeAsync()
    {
        Interlocked.Increment(ref _asyncDisposals);
        return ValueTask.CompletedTask;
    }

    public void Dispose() => Interlocked.Increment(ref _disposals);
}

/// <summary>An item with only the synchronous disposal interface.</summary>
internal sealed class DisposableItem : IDisposable
{
    private int _disposals;

    public int Disposals => Volatile.Read(ref _disposals);

    public void Dispose() => Interlocked.Increment(ref _disposals);
}

/// <summary>
/// Records the <see cref="ScopeDiagnostics.UnobservedFailure"/> and <see cref="ScopeDiagnostics.LeakDetected"/> events
/// of one pool (by its unique name) while subscribed; disposing unsubscribes.
/// </summary>
internal sealed class PoolDiagnosticsCapture : IDisposable
{
    private readonly string _name;
    private readonly ConcurrentQueue<Exception> _failures = new();
    private readonly ConcurrentQueue<OpenScopeInfo> _leaks = new();
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Gate)> _failureWaits = [];

    public PoolDiagnosticsCapture(string name)
    {
        _name = name;
        ScopeDiagnostics.UnobservedFailure += OnUnobservedFailure;
        ScopeDiagnostics.LeakDetected += OnLeakDetected;
    }

    public IReadOnlyList<Exception> Failures => [.. _failures];

    public IReadOnlyList<OpenScopeInfo> Leaks => [.. _leaks];

    /// <summary>Completes once at least <paramref name="count"/> failures of the pool were reported.</summary>
    public Task WhenFailures(int count)
    {
        lock (_lock)
        {
            if (_failures.Count >= count)
            {
                return Task.CompletedTask;
            }

            var gate = PoolTest.NewGate();
            _failureWaits.Add((count, gate));
            return gate.Task;
        }
    }

    public void Dispose()
    {
        ScopeDiagnostics.UnobservedFailure -= OnUnobservedFailure;
        ScopeDiagnostics.LeakDetected -= OnLeakDetected;
    }

    private void OnUnobservedFailure(object? sender, UnobservedScopeFailureEventArgs e)
    {
        if (e.ScopeName != _name)
        {
            return;
        }

        lock (_lock)
        {
            _failures.Enqueue(e.Exception);
            foreach (var (count, gate) in _failureWaits)
            {
                if (_failures.Count >= count)
                {
                    gate.TrySetResult();
                }
            }
        }
    }

    private void OnLeakDetected(object? sender, ScopeLeakEventArgs e)
    {
        if (e.Scope.Name == _name)
        {
            _leaks.Enqueue(e.Scope);
        }
    }
}

/// <summary>Counts the items a factory made and lets a test wait for the n-th one.</summary>
internal sealed class CreationCounter
{
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Gate)> _waits = [];
    private int _created;

    public int Created
    {
        get
        {
            lock (_lock)
            {
                return _created;
            }
        }
    }

    /// <summary>A factory that counts the items it makes.</summary>
    public ValueTask<Item> Create(CancellationToken cancellationToken)
    {
        OnCreated();
        return ValueTask.FromResult(new Item());
    }

    public void OnCreated()
    {
        lock (_lock)
        {
            _created++;
            foreach (var (count, gate) in _waits)
            {
                if (_created >= count)
                {
                    gate.TrySetResult();
                }
            }
        }
    }

    /// <summary>Completes once at least <paramref name="count"/> items were created.</summary>
    public Task WhenCreated(int count)
    {
        lock (_lock)
        {
            if (_created >= count)
            {
                return Task.CompletedTask;
            }

            var gate = PoolTest.NewGate();
            _waits.Add((count, gate));
            return gate.Task;
        }
    }
}

/// <summary>A Destroy callback that records what it destroyed, in order, and lets a test wait for the n-th.</summary>
internal sealed class DestroyLog
{
    private readonly Lock _lock = new();
    private readonly List<Item> _items = [];
    private readonly List<(int Count, TaskCompletionSource Gate)> _waits = [];

    public IReadOnlyList<Item> Items
    {
        get
        {
            lock (_lock)
            {
                return [.. _items];
            }
        }
    }

    public ValueTask Destroy(Item item)
    {
        item.MarkDestroyed();
        lock (_lock)
        {
            _items.Add(item);
            foreach (var (count, gate) in _waits)
            {
                if (_items.Count >= count)
                {
                    gate.TrySetResult();
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    public Task WhenCount(int count)
    {
        lock (_lock)
        {
            if (_items.Count >= count)
            {
                return Task.CompletedTask;
            }

            var gate = PoolTest.NewGate();
            _waits.Add((count, gate));
            return gate.Task;
        }
    }
}
