namespace AsyncScopes.Tests.Pooling;

/// <summary>
/// Runs alone: leak tracking (a process-wide switch that another test could turn on) makes every rent capture a
/// stack trace, so these tests turn it off for their duration and restore it after.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialPoolTests
{
    public const string Name = "Pool tests that must run alone";
}

[Collection(SerialPoolTests.Name)]
public sealed class AsyncPoolAllocationTests
{
    private const int Iterations = 1000;

    [Fact]
    public async Task Renting_and_returning_an_idle_item_allocates_nothing()
    {
        bool tracking = ScopeDiagnostics.LeakTracking;
        ScopeDiagnostics.LeakTracking = false;
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 2, Name = PoolTest.UniqueName() });

            // Warm up: create the item, compile the path.
            for (int round = 0; round < 3; round++)
            {
                _ = RentAndReturn(pool, Iterations, out int warmedUp, out var warmUpPending);
                await CompleteAsync(warmUpPending);
                Assert.Equal(Iterations, warmedUp);
            }

            long allocated = RentAndReturn(pool, Iterations, out int synchronous, out var pending);
            await CompleteAsync(pending);

            Assert.Equal(Iterations, synchronous);
            Assert.Equal(0, allocated);
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
            await pool.DisposeWithinAsync();
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = tracking;
        }
    }

    [Fact]
    public async Task Renting_and_returning_an_idle_item_allocates_nothing_in_a_pool_with_limits_that_takes_its_lock()
    {
        bool tracking = ScopeDiagnostics.LeakTracking;
        ScopeDiagnostics.LeakTracking = false;
        try
        {
            // Limits long enough never to be reached here; with them the pool keeps no idle item outside its lock, and
            // times each return. Without Validate and Reset: the guide promises no allocation only without them.
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 2,
                MinIdle = 1,
                AcquireTimeout = TimeSpan.FromHours(1),
                IdleTimeout = TimeSpan.FromHours(1),
                MaxLifetime = TimeSpan.FromHours(1),
                DiscardOn = static _ => true,
                Name = PoolTest.UniqueName(),
            });

            for (int round = 0; round < 3; round++)
            {
                _ = RentAndReturn(pool, Iterations, out int warmedUp, out var warmUpPending);
                await CompleteAsync(warmUpPending);
                Assert.Equal(Iterations, warmedUp);
            }

            long allocated = RentAndReturn(pool, Iterations, out int synchronous, out var pending);
            await CompleteAsync(pending);

            Assert.Equal(Iterations, synchronous);
            Assert.Equal(0, allocated);
            Assert.Equal(0, pool.Statistics.InUse);
            Assert.Equal(0, pool.Statistics.Destroyed);
            await pool.DisposeWithinAsync();
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = tracking;
        }
    }

    [Fact]
    public async Task TryRent_and_return_of_an_idle_item_allocates_nothing()
    {
        bool tracking = ScopeDiagnostics.LeakTracking;
        ScopeDiagnostics.LeakTracking = false;
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 2, Name = PoolTest.UniqueName() });
            var first = await pool.RentWithinAsync();
            await first.ReturnWithinAsync();

            for (int round = 0; round < 3; round++)
            {
                _ = TryRentAndReturn(pool, Iterations, out int warmedUp, out var warmUpPending);
                await CompleteAsync(warmUpPending);
                Assert.Equal(Iterations, warmedUp);
            }

            long allocated = TryRentAndReturn(pool, Iterations, out int synchronous, out var pending);
            await CompleteAsync(pending);

            Assert.Equal(Iterations, synchronous);
            Assert.Equal(0, allocated);
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
            await pool.DisposeWithinAsync();
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = tracking;
        }
    }

    // Not async, so that nothing but the pool allocates between the two readings. Stops at the first operation that
    // did not complete synchronously and hands it back to be awaited (that is already a failure of the test).
    private static long RentAndReturn(AsyncPool<Item> pool, int count, out int completedSynchronously, out Task? pending)
    {
        completedSynchronously = 0;
        pending = null;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < count; i++)
        {
            ValueTask<PoolLease<Item>> rent = pool.RentAsync();
            if (!rent.IsCompletedSuccessfully)
            {
                pending = ReturnWhenRentedAsync(rent.AsTask());
                break;
            }

            ValueTask returned = rent.Result.DisposeAsync();
            if (!returned.IsCompletedSuccessfully)
            {
                pending = returned.AsTask();
                break;
            }

            completedSynchronously++;
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static long TryRentAndReturn(AsyncPool<Item> pool, int count, out int completedSynchronously, out Task? pending)
    {
        completedSynchronously = 0;
        pending = null;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < count; i++)
        {
            if (!pool.TryRent(out var lease))
            {
                break;
            }

            ValueTask returned = lease.DisposeAsync();
            if (!returned.IsCompletedSuccessfully)
            {
                pending = returned.AsTask();
                break;
            }

            completedSynchronously++;
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static async Task ReturnWhenRentedAsync(Task<PoolLease<Item>> rent)
    {
        var lease = await rent.WaitAsync(PoolTest.Patience);
        await lease.DisposeAsync();
    }

    private static async Task CompleteAsync(Task? pending)
    {
        if (pending is not null)
        {
            await pending.WaitAsync(PoolTest.Patience);
        }
    }
}
