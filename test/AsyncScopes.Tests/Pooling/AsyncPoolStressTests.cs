using System.Collections.Concurrent;
using Xunit.Abstractions;

namespace AsyncScopes.Tests.Pooling;

/// <summary>
/// Many renters fight over a small pool while rents are cancelled (before they start, after a few yields, or by another
/// renter's return, which races cancellation with the hand-over), 10% of creations and 10% of validations fail, and
/// some items are discarded. Live items are counted by the factory (+1) and Destroy (-1): there are never more than
/// MaxSize, and at the end every slot is accounted for and the pool can still lend MaxSize items at once. Run with
/// validation (a waiter goes on asynchronously from the item it is handed) and without (a waiter is awaited by its
/// renter for the lease itself, and a place handed to it is turned into an item on its behalf).
/// </summary>
public sealed class AsyncPoolStressTests
{
    private const int Renters = 64;
    private const int RentsPerRenter = 200;
    private const int MaxSize = 8;
    private const int QuietRenters = 6;
    private const int Seed = 20261124;
    private const string FactoryFailure = "stress: the factory failed";

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private readonly ITestOutputHelper _output;

    public AsyncPoolStressTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Never_more_than_MaxSize_items_exist_under_cancellation_and_failures_and_every_slot_is_accounted_for(bool validate)
    {
        var run = new StressRun(Seed);
        var pool = new AsyncPool<Item>(run.CreateAsync, new AsyncPoolOptions<Item>
        {
            MaxSize = MaxSize,
            Validate = validate ? run.ValidateAsync : null,
            Reset = run.ResetAsync,
            Destroy = run.DestroyAsync,
            Name = PoolTest.UniqueName(),
        });

        // Crowded: far more renters than items, so most rents wait and items pass from renter to renter.
        var renters = Enumerable.Range(0, Renters).Select(index => Task.Run(() => run.RentManyAsync(pool, index, RentsPerRenter))).ToArray();
        await Task.WhenAll(renters).WaitAsync(Bound);

        // Quiet: fewer renters than items, so items go idle and are validated when rented again.
        var quietRenters = Enumerable.Range(Renters, QuietRenters).Select(index => Task.Run(() => run.RentManyAsync(pool, index, RentsPerRenter))).ToArray();
        await Task.WhenAll(quietRenters).WaitAsync(Bound);

        string summary = run.ToString();
        _output.WriteLine(summary);
        Assert.True(run.MaxLive <= MaxSize, $"{run.MaxLive} items existed at once with MaxSize {MaxSize}; {summary}");
        Assert.True(run.Violations.IsEmpty, string.Join(Environment.NewLine, run.Violations) + Environment.NewLine + summary);
        Assert.True(run.PreCancelledRentsThatSucceeded == 0, summary);

        // Every slot is accounted for.
        var statistics = pool.Statistics;
        Assert.Equal(0, statistics.InUse);
        Assert.Equal(0, statistics.Waiters);
        Assert.Equal(statistics.Idle + statistics.InUse, statistics.Size);
        Assert.Equal(statistics.Size, statistics.Created - statistics.Destroyed);
        Assert.Equal(run.Created, statistics.Created);
        Assert.Equal(run.Destroyed, statistics.Destroyed);
        Assert.Equal(run.Live, statistics.Size);
        Assert.True(statistics.Size <= MaxSize, $"{statistics}");

        // The run reached every situation it is meant to exercise.
        Assert.True(run.FactoryFailuresSeen > 0, summary);
        Assert.True(!validate || run.ValidationFailures > 10, summary);
        Assert.True(run.CancelledRents > Renters, summary);
        Assert.True(run.Discards > 0, summary);
        Assert.True(run.CompletedRents > Renters * RentsPerRenter / 2, summary);
        Assert.Equal((Renters + QuietRenters) * RentsPerRenter, run.CompletedRents + run.CancelledRents + run.FactoryFailuresSeen);

        // The pool can still lend MaxSize items at once, and not one more.
        run.FailuresOn = false;
        var leases = await Task.WhenAll(Enumerable.Range(0, MaxSize).Select(_ => pool.RentAsync().AsTask())).WaitAsync(Bound);
        Assert.Equal(MaxSize, leases.Select(lease => lease.Value).Distinct().Count());
        Assert.False(pool.TryRent(out _));
        Assert.Equal(MaxSize, pool.Statistics.InUse);
        Assert.Equal(MaxSize, pool.Statistics.Size);
        Assert.Equal(MaxSize, run.Live);
        Assert.True(run.MaxLive <= MaxSize, $"{run.MaxLive} items existed at once; {run}");

        // One more renter waits (it does not create an item), and its cancellation takes nothing.
        using (var extraCancellation = new CancellationTokenSource())
        {
            var extra = pool.RentAsync(extraCancellation.Token).AsTask();
            Assert.False(extra.IsCompleted);
            Assert.Equal(1, pool.Statistics.Waiters);
            Assert.Equal(MaxSize, run.Live);
            await extraCancellation.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => extra.WaitAsync(Bound));
            Assert.Equal(new PoolStatistics(Size: MaxSize, Idle: 0, InUse: MaxSize, Waiters: 0, Created: run.Created, Destroyed: run.Destroyed), pool.Statistics);
        }

        foreach (var lease in leases)
        {
            await lease.DisposeAsync().AsTask().WaitAsync(Bound);
        }

        await pool.DisposeAsync().AsTask().WaitAsync(Bound);
        Assert.Equal(0, pool.Statistics.Size);
        Assert.Equal(0, run.Live);
        Assert.True(run.Violations.IsEmpty, string.Join(Environment.NewLine, run.Violations));
    }

    private sealed class StressRun(int seed)
    {
        private static readonly CancellationToken PreCancelled = new(canceled: true);

        private readonly Lock _chanceLock = new();
        private readonly Random _chance = new(seed);
        private readonly int _seed = seed;
        private readonly ConcurrentQueue<CancellationTokenSource> _cancelOnNextReturn = new();
        private volatile bool _failuresOn = true;
        private int _live;
        private int _maxLive;
        private long _created;
        private long _destroyed;
        private int _factoryFailures;
        private int _factoryFailuresSeen;
        private int _validationFailures;
        private int _cancelledRents;
        private int _completedRents;
        private int _discards;
        private int _preCancelledRentsThatSucceeded;

        public ConcurrentQueue<string> Violations { get; } = new();

        public bool FailuresOn
        {
            get => _failuresOn;
            set => _failuresOn = value;
        }

        public int Live => Volatile.Read(ref _live);

        public int MaxLive => Volatile.Read(ref _maxLive);

        public long Created => Interlocked.Read(ref _created);

        public long Destroyed => Interlocked.Read(ref _destroyed);

        public int FactoryFailuresSeen => Volatile.Read(ref _factoryFailuresSeen);

        public int ValidationFailures => Volatile.Read(ref _validationFailures);

        public int CancelledRents => Volatile.Read(ref _cancelledRents);

        public int CompletedRents => Volatile.Read(ref _completedRents);

        public int Discards => Volatile.Read(ref _discards);

        public int PreCancelledRentsThatSucceeded => Volatile.Read(ref _preCancelledRentsThatSucceeded);

        public async ValueTask<Item> CreateAsync(CancellationToken cancellationToken)
        {
            var (fail, yield) = Roll(failPercent: 10, yieldPercent: 30);
            if (yield)
            {
                await Task.Yield();
                cancellationToken.ThrowIfCancellationRequested();
            }

            if (fail && FailuresOn)
            {
                Interlocked.Increment(ref _factoryFailures);
                throw new InvalidOperationException(FactoryFailure);
            }

            int live = Interlocked.Increment(ref _live);
            int max = Volatile.Read(ref _maxLive);
            while (live > max)
            {
                int seen = Interlocked.CompareExchange(ref _maxLive, live, max);
                if (seen == max)
                {
                    break;
                }

                max = seen;
            }

            Interlocked.Increment(ref _created);
            return new Item();
        }

        public async ValueTask<bool> ValidateAsync(Item item, CancellationToken cancellationToken)
        {
            var (fail, yield) = Roll(failPercent: 10, yieldPercent: 30);
            if (yield)
            {
                await Task.Yield();
                cancellationToken.ThrowIfCancellationRequested();
            }

            CheckNotLeasedNorDestroyed(item, "validated");
            if (fail && FailuresOn)
            {
                Interlocked.Increment(ref _validationFailures);
                return false;
            }

            return true;
        }

        public async ValueTask ResetAsync(Item item)
        {
            CheckNotLeasedNorDestroyed(item, "reset");
            if (Roll(failPercent: 0, yieldPercent: 30).Yield)
            {
                await Task.Yield();
            }
        }

        public async ValueTask DestroyAsync(Item item)
        {
            if (item.IsLeased)
            {
                Violations.Enqueue($"{item} was destroyed while a renter held it");
            }

            if (item.MarkDestroyed() != 1)
            {
                Violations.Enqueue($"{item} was destroyed twice");
            }

            Interlocked.Decrement(ref _live);
            Interlocked.Increment(ref _destroyed);
            if (Roll(failPercent: 0, yieldPercent: 30).Yield)
            {
                await Task.Yield();
            }
        }

        public async Task RentManyAsync(AsyncPool<Item> pool, int renter, int rents)
        {
            var random = new Random(_seed + 1 + renter);
            for (int i = 0; i < rents; i++)
            {
                // Rest between rents, so that items sometimes go idle (and are validated when rented again) rather than
                // always passing straight from one renter to the next waiter.
                int rest = random.Next(8);
                for (int y = 0; y < rest; y++)
                {
                    await Task.Yield();
                }

                int roll = random.Next(100);
                PoolLease<Item> lease;
                try
                {
                    if (roll < 5)
                    {
                        lease = await pool.RentAsync(PreCancelled);
                        Interlocked.Increment(ref _preCancelledRentsThatSucceeded);
                    }
                    else if (roll < 15)
                    {
                        lease = await RentAndCancelAfterYieldsAsync(pool, random.Next(4));
                    }
                    else if (roll < 25)
                    {
                        // Cancelled by whichever renter returns an item next: cancellation races the hand-over.
                        var cancellation = new CancellationTokenSource();
                        _cancelOnNextReturn.Enqueue(cancellation);
                        lease = await pool.RentAsync(cancellation.Token);
                    }
                    else
                    {
                        lease = await pool.RentAsync();
                    }
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref _cancelledRents);
                    continue;
                }
                catch (InvalidOperationException e) when (e.Message == FactoryFailure)
                {
                    Interlocked.Increment(ref _factoryFailuresSeen);
                    continue;
                }

                var item = lease.Value;
                if (!item.TryMarkLeased())
                {
                    Violations.Enqueue($"{item} was lent to two renters at once");
                }

                if (item.DestroyCount != 0)
                {
                    Violations.Enqueue($"{item} was lent after being destroyed");
                }

                int yields = random.Next(3);
                for (int y = 0; y < yields; y++)
                {
                    await Task.Yield();
                }

                bool discard = random.Next(20) == 0;
                item.MarkReturned();
                if (discard)
                {
                    lease.Discard();
                    Interlocked.Increment(ref _discards);
                }

                await lease.DisposeAsync();
                if (_cancelOnNextReturn.TryDequeue(out var toCancel))
                {
                    await toCancel.CancelAsync();
                }

                Interlocked.Increment(ref _completedRents);
            }
        }

        public override string ToString() =>
            $"maxLive {MaxLive}, live {Live}, created {Created}, destroyed {Destroyed}, completed rents {CompletedRents}, " +
            $"cancelled {CancelledRents}, factory failures {Volatile.Read(ref _factoryFailures)} (seen by renters {FactoryFailuresSeen}), " +
            $"validation failures {ValidationFailures}, discards {Discards}";

        private static async Task<PoolLease<Item>> RentAndCancelAfterYieldsAsync(AsyncPool<Item> pool, int yields)
        {
            using var cancellation = new CancellationTokenSource();
            var rent = pool.RentAsync(cancellation.Token).AsTask();
            for (int i = 0; i < yields; i++)
            {
                await Task.Yield();
            }

            await cancellation.CancelAsync();
            return await rent;
        }

        private void CheckNotLeasedNorDestroyed(Item item, string what)
        {
            if (item.IsLeased)
            {
                Violations.Enqueue($"{item} was {what} while a renter held it");
            }

            if (item.DestroyCount != 0)
            {
                Violations.Enqueue($"{item} was {what} after being destroyed");
            }
        }

        private (bool Fail, bool Yield) Roll(int failPercent, int yieldPercent)
        {
            lock (_chanceLock)
            {
                return (_chance.Next(100) < failPercent, _chance.Next(100) < yieldPercent);
            }
        }
    }

    [Fact]
    public async Task A_returned_item_never_sits_idle_while_a_renter_waits_for_it()
    {
        // One item, several renters: every return races a renter that is about to wait. An item left idle while a
        // renter waits would stall the renters, so the bounded wait below would fail.
        const int Renters = 4;
        const int RentsPerRenter = 2000;
        await using var pool = new AsyncPool<object>(_ => new ValueTask<object>(new object()), new AsyncPoolOptions<object> { MaxSize = 1 });
        int held = 0;
        int overlaps = 0;

        async Task RentLoopAsync()
        {
            for (int i = 0; i < RentsPerRenter; i++)
            {
                await using var lease = await pool.RentAsync();
                if (Interlocked.Increment(ref held) != 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                if (i % 3 == 0)
                {
                    await Task.Yield();
                }

                Interlocked.Decrement(ref held);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Renters).Select(_ => Task.Run(RentLoopAsync))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(0, overlaps);
        var statistics = pool.Statistics;
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), statistics);
    }
}
