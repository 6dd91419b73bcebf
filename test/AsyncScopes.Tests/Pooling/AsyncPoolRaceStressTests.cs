using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace AsyncScopes.Tests.Pooling;

/// <summary>
/// Races at the edges of a pool's hand-over, each repeated a bounded number of rounds, with the two sides of a round
/// acting close together on two threads, each side first in half the rounds: a waiter cancelled or timed out as an
/// item is returned to it, and a disposal as a lease is returned or as renters come and go. Whoever wins, no item is
/// lost or destroyed twice, no place in the pool is lost, and the disposal ends. Each runs against a pool that keeps
/// its last idle item outside its lock, one that sweeps idle items (and so takes its lock on every return), one that
/// resets returned items, and one that validates idle items (whose waiters go on asynchronously from the item they
/// are handed, where the others are awaited by their renters for the lease itself).
/// </summary>
public sealed class AsyncPoolRaceStressTests
{
    private const int Rounds = 500;
    private const int MaxSpins = 32;
    private static readonly TimeSpan Patience = PoolTest.Patience;

    private readonly ITestOutputHelper _output;

    public AsyncPoolRaceStressTests(ITestOutputHelper output) => _output = output;

    public enum Kind
    {
        Cached,
        Swept,
        Reset,
        Validated,
    }

    [Theory]
    [InlineData(Kind.Cached)]
    [InlineData(Kind.Swept)]
    [InlineData(Kind.Reset)]
    [InlineData(Kind.Validated)]
    public async Task A_waiter_cancelled_as_an_item_is_returned_either_gets_it_or_leaves_it_to_the_pool(Kind kind)
    {
        var time = new FakeTimeProvider();
        var pool = NewPool(kind, time, maxSize: 1);
        var item = await OnlyItemAsync(pool);
        int handedOver = 0;
        int cancelled = 0;

        for (int round = 0; round < Rounds; round++)
        {
            var held = await pool.RentWithinAsync();
            using var cancellation = new CancellationTokenSource();
            var waiting = pool.RentAsync(cancellation.Token).AsTask();
            Assert.Equal(1, pool.Statistics.Waiters);

            await AtOnceAsync(
                round,
                () => held.DisposeAsync().AsTask(),
                () =>
                {
                    cancellation.Cancel(); // its callbacks run here, not later on another thread
                    return Task.CompletedTask;
                });

            PoolLease<Item> lease;
            try
            {
                lease = await waiting.WaitAsync(Patience);
            }
            catch (OperationCanceledException)
            {
                cancelled++;
                AssertOneIdleItem(pool, round);
                continue;
            }

            handedOver++;
            Assert.Same(item, lease.Value);
            await lease.ReturnWithinAsync();
            AssertOneIdleItem(pool, round);
        }

        _output.WriteLine($"{kind}: handed over {handedOver}, cancelled {cancelled}");
        Assert.Equal(Rounds, handedOver + cancelled);
        Assert.True(handedOver > 0 && cancelled > 0, "each side leads in half the rounds: both outcomes must occur");
        await pool.DisposeWithinAsync();
        Assert.Equal(1, item.DestroyCount);
    }

    [Theory]
    [InlineData(Kind.Cached)]
    [InlineData(Kind.Swept)]
    [InlineData(Kind.Reset)]
    [InlineData(Kind.Validated)]
    public async Task A_waiter_timing_out_as_an_item_is_returned_either_gets_it_or_leaves_it_to_the_pool(Kind kind)
    {
        var time = new FakeTimeProvider();
        var acquireTimeout = TimeSpan.FromSeconds(5);
        string name = PoolTest.UniqueName();
        var pool = NewPool(kind, time, maxSize: 1, acquireTimeout, name);
        var item = await OnlyItemAsync(pool);
        int handedOver = 0;
        int timedOut = 0;

        for (int round = 0; round < Rounds; round++)
        {
            var held = await pool.RentWithinAsync();
            var waiting = pool.RentAsync().AsTask();
            Assert.Equal(1, pool.Statistics.Waiters);

            await AtOnceAsync(
                round,
                () => held.DisposeAsync().AsTask(),
                () =>
                {
                    time.Advance(acquireTimeout);
                    return Task.CompletedTask;
                });

            PoolLease<Item> lease;
            try
            {
                lease = await waiting.WaitAsync(Patience);
            }
            catch (TimeoutException e) when (e.Message.Contains(name, StringComparison.Ordinal))
            {
                timedOut++;
                AssertOneIdleItem(pool, round);
                continue;
            }

            handedOver++;
            Assert.Same(item, lease.Value);
            await lease.ReturnWithinAsync();
            AssertOneIdleItem(pool, round);
        }

        _output.WriteLine($"{kind}: handed over {handedOver}, timed out {timedOut}");
        Assert.Equal(Rounds, handedOver + timedOut);
        Assert.True(handedOver > 0 && timedOut > 0, "each side leads in half the rounds: both outcomes must occur");
        await pool.DisposeWithinAsync();
        Assert.Equal(1, item.DestroyCount);
    }

    [Theory]
    [InlineData(Kind.Cached)]
    [InlineData(Kind.Swept)]
    [InlineData(Kind.Reset)]
    [InlineData(Kind.Validated)]
    public async Task A_lease_returned_as_its_pool_is_disposed_is_destroyed_once_and_the_disposal_ends(Kind kind)
    {
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            for (int round = 0; round < Rounds; round++)
            {
                var pool = NewPool(kind, new FakeTimeProvider(), maxSize: 2, name: name);
                var returned = await pool.RentWithinAsync();
                var idle = await pool.RentWithinAsync();
                var (returnedItem, idleItem) = (returned.Value, idle.Value);
                await idle.ReturnWithinAsync();

                await AtOnceAsync(round, () => returned.DisposeAsync().AsTask(), () => pool.DisposeAsync().AsTask());

                Assert.True(returnedItem.DestroyCount == 1, $"round {round}: the returned item was destroyed {returnedItem.DestroyCount} times");
                Assert.True(idleItem.DestroyCount == 1, $"round {round}: the idle item was destroyed {idleItem.DestroyCount} times");
                Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 2, Destroyed: 2), pool.Statistics);
            }

            Assert.Empty(capture.Leaks);
            Assert.Empty(capture.Failures);
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Theory]
    [InlineData(Kind.Cached)]
    [InlineData(Kind.Swept)]
    [InlineData(Kind.Reset)]
    [InlineData(Kind.Validated)]
    public async Task Disposing_a_pool_while_renters_come_and_go_fails_them_with_ObjectDisposedException_and_destroys_every_item_once(Kind kind)
    {
        const int PoolRounds = 50;
        const int Renters = 4;
        const int RentsBeforeDisposal = 100;
        const int MaxRentsPerRenter = 100_000;
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            for (int round = 0; round < PoolRounds; round++)
            {
                var items = new System.Collections.Concurrent.ConcurrentQueue<Item>();
                var time = new FakeTimeProvider();
                var pool = new AsyncPool<Item>(
                    async _ =>
                    {
                        await Task.Yield();
                        var item = new Item();
                        items.Enqueue(item);
                        return item;
                    },
                    Options(kind, time, maxSize: 2, name: name));
                int rents = 0;
                var enoughRents = PoolTest.NewGate();
                var violations = new System.Collections.Concurrent.ConcurrentQueue<string>();

                async Task RentUntilDisposedAsync(int renter)
                {
                    var random = new Random((round * Renters) + renter);
                    for (int i = 0; i < MaxRentsPerRenter; i++)
                    {
                        PoolLease<Item> lease;
                        try
                        {
                            lease = await pool.RentAsync();
                        }
                        catch (ObjectDisposedException)
                        {
                            return;
                        }

                        if (!lease.Value.TryMarkLeased())
                        {
                            violations.Enqueue($"{lease.Value} was lent to two renters at once");
                        }

                        if (lease.Value.DestroyCount != 0)
                        {
                            violations.Enqueue($"{lease.Value} was lent after being destroyed");
                        }

                        if (Interlocked.Increment(ref rents) == RentsBeforeDisposal)
                        {
                            enoughRents.TrySetResult();
                        }

                        if (random.Next(2) == 0)
                        {
                            await Task.Yield();
                        }

                        lease.Value.MarkReturned();
                        if (random.Next(10) == 0)
                        {
                            lease.Discard();
                        }

                        await lease.DisposeAsync();
                    }

                    violations.Enqueue($"renter {renter} was never told that the pool is disposed");
                }

                var renters = Enumerable.Range(0, Renters).Select(renter => Task.Run(() => RentUntilDisposedAsync(renter))).ToArray();
                await enoughRents.Task.WaitAsync(Patience);
                await pool.DisposeWithinAsync();
                await Task.WhenAll(renters).WaitAsync(Patience);

                Assert.True(violations.IsEmpty, $"round {round}: {string.Join("; ", violations)}");
                var statistics = pool.Statistics;
                Assert.True(statistics.Size == 0 && statistics.Created == items.Count && statistics.Destroyed == items.Count, $"round {round}: {statistics}, {items.Count} items made");
                Assert.All(items, item => Assert.Equal(1, item.DestroyCount));
            }

            Assert.Empty(capture.Leaks);
            Assert.Empty(capture.Failures);
        }
        finally
        {
            capture.Dispose();
        }
    }

    private static AsyncPoolOptions<Item> Options(Kind kind, FakeTimeProvider time, int maxSize, TimeSpan? acquireTimeout = null, string? name = null) => new()
    {
        MaxSize = maxSize,
        AcquireTimeout = acquireTimeout,
        Name = name ?? PoolTest.UniqueName(),

        // Long enough never to expire here, and longer than the drain can take: a disposal that never ends fails the
        // test by the patience bound, instead of ending by its drain timeout.
        IdleTimeout = kind == Kind.Swept ? TimeSpan.FromDays(30) : null,
        DrainTimeout = TimeSpan.FromDays(30),
        TimeProvider = time,
        Reset = kind == Kind.Reset ? _ => ValueTask.CompletedTask : null,
        Validate = kind == Kind.Validated ? (_, _) => ValueTask.FromResult(true) : null,
        Destroy = item =>
        {
            item.MarkDestroyed();
            return ValueTask.CompletedTask;
        },
    };

    private static AsyncPool<Item> NewPool(Kind kind, FakeTimeProvider time, int maxSize, TimeSpan? acquireTimeout = null, string? name = null) =>
        PoolTest.NewPool(Options(kind, time, maxSize, acquireTimeout, name));

    private static async Task<Item> OnlyItemAsync(AsyncPool<Item> pool)
    {
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;
        await lease.ReturnWithinAsync();
        return item;
    }

    private static void AssertOneIdleItem(AsyncPool<Item> pool, int round)
    {
        var statistics = pool.Statistics;
        Assert.True(
            statistics == new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0),
            $"round {round}: {statistics}");
    }

    // Runs both on thread-pool threads, and waits for both. A leader, each side in turn by round, acts as soon as the
    // other side has started; the other spins until the leader is about to act, then a little more (the round says how
    // long), so that the two act close together, in both orders.
    private static async Task AtOnceAsync(int round, Func<Task> first, Func<Task> second)
    {
        int followerSpins = new Random(round).Next(MaxSpins);
        bool firstLeads = round % 2 == 0;
        int followerStarted = 0;
        int leaderActing = 0;

        Task Lead(Func<Task> action) => Task.Run(() =>
        {
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref followerStarted) == 1, Patience), "the other side never started");
            Volatile.Write(ref leaderActing, 1);
            return action();
        });

        Task Follow(Func<Task> action) => Task.Run(() =>
        {
            Volatile.Write(ref followerStarted, 1);
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref leaderActing) == 1, Patience), "the other side never acted");
            Thread.SpinWait(followerSpins);
            return action();
        });

        await Task.WhenAll(firstLeads ? Lead(first) : Follow(first), firstLeads ? Follow(second) : Lead(second)).WaitAsync(Patience);
    }
}
