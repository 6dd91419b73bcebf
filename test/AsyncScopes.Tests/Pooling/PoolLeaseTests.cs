using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Pooling;

public sealed class PoolLeaseTests
{
    [Fact]
    public async Task The_debugger_shows_whether_a_lease_holds_its_item()
    {
        var pool = PoolTest.NewPool();
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;
        string leased = DebuggerDisplayOf(lease);
        await lease.ReturnWithinAsync();

        Assert.Equal("(none)", DebuggerDisplayOf(default));
        Assert.Equal($"Leased: {item}", leased);
        Assert.Equal("Returned", DebuggerDisplayOf(lease));
    }

    [Fact]
    public async Task Returning_a_lease_twice_is_ignored()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var lease = await pool.RentWithinAsync();
        await lease.ReturnWithinAsync();
        var afterFirstReturn = pool.Statistics;

        var second = lease.DisposeAsync();

        Assert.True(second.IsCompletedSuccessfully);
        await second;
        Assert.Equal(afterFirstReturn, pool.Statistics);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await AssertTheItemIsInThePoolOnceAsync(pool);
    }

    [Fact]
    public async Task Returning_a_copy_of_a_returned_lease_is_ignored()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var lease = await pool.RentWithinAsync();
        var copy = lease;
        await lease.ReturnWithinAsync();
        var afterFirstReturn = pool.Statistics;

        await copy.ReturnWithinAsync();

        Assert.Equal(afterFirstReturn, pool.Statistics);
        Assert.Throws<ObjectDisposedException>(() => copy.Value);
        await AssertTheItemIsInThePoolOnceAsync(pool);
    }

    [Fact]
    public async Task Returning_a_copy_first_ends_the_lease_and_the_original_is_then_ignored()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var lease = await pool.RentWithinAsync();
        var copy = lease;

        await copy.ReturnWithinAsync();
        var afterFirstReturn = pool.Statistics;
        Assert.Throws<ObjectDisposedException>(() => lease.Value);
        await lease.ReturnWithinAsync();

        Assert.Equal(afterFirstReturn, pool.Statistics);
        await AssertTheItemIsInThePoolOnceAsync(pool);
    }

    [Fact]
    public async Task A_stale_lease_cannot_return_or_discard_the_item_after_it_was_lent_again()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var stale = await pool.RentWithinAsync();
        var item = stale.Value;
        await stale.ReturnWithinAsync();
        var current = await pool.RentWithinAsync();
        Assert.Same(item, current.Value);
        var whileLent = pool.Statistics;

        stale.Discard();
        await stale.ReturnWithinAsync();

        Assert.Equal(whileLent, pool.Statistics);
        Assert.Same(item, current.Value);
        Assert.Throws<ObjectDisposedException>(() => stale.Value);
        Assert.False(pool.TryRent(out _));

        // The current lease was not marked for discard by the stale one: its item goes back to the pool.
        await current.ReturnWithinAsync();
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        Assert.Equal(0, item.DestroyCount);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task Value_after_return_throws_ObjectDisposedException()
    {
        var pool = PoolTest.NewPool();
        var lease = await pool.RentWithinAsync();
        Assert.NotNull(lease.Value);

        await lease.ReturnWithinAsync();

        Assert.Throws<ObjectDisposedException>(() => lease.Value);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_default_lease_has_no_value_and_disposing_it_does_nothing()
    {
        PoolLease<Item> lease = default;

        Assert.Throws<ObjectDisposedException>(() => lease.Value);
        lease.Discard();
        var disposal = lease.DisposeAsync();
        Assert.True(disposal.IsCompletedSuccessfully);
        await disposal;
        Assert.Throws<ObjectDisposedException>(() => lease.Value);
    }

    [Fact]
    public async Task A_discarded_lease_destroys_its_item_instead_of_returning_it()
    {
        var destroyed = new List<Item>();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Destroy = item =>
            {
                lock (destroyed)
                {
                    destroyed.Add(item);
                }

                return ValueTask.CompletedTask;
            },
        });
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;

        lease.Discard();
        Assert.Same(item, lease.Value); // discarding marks the lease; the item is destroyed when it is returned
        await lease.ReturnWithinAsync();

        Assert.Same(item, Assert.Single(destroyed));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
        var next = await pool.RentWithinAsync();
        Assert.NotSame(item, next.Value);
        await next.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_lease_dropped_without_being_returned_is_reported_and_its_capacity_reclaimed_when_collected()
    {
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Name = name });
            RentAndDrop(pool);
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
            Assert.False(pool.TryRent(out _));

            for (int attempt = 0; attempt < 10 && capture.Leaks.Count == 0; attempt++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
            }

            var leak = Assert.Single(capture.Leaks);
            Assert.Equal("PoolLease", leak.Kind);
            Assert.Equal(name, leak.Name);
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);

            var lease = await pool.RentWithinAsync();
            Assert.NotNull(lease.Value);
            Assert.Equal(2, pool.Statistics.Created);
            await lease.ReturnWithinAsync();
            await pool.DisposeWithinAsync();
            Assert.Single(capture.Leaks);
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task A_waiter_gets_the_capacity_of_a_lease_that_was_collected()
    {
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Name = name });
            RentAndDrop(pool);
            var waiter = pool.RentAsync().AsTask();
            Assert.Equal(1, pool.Statistics.Waiters);

            for (int attempt = 0; attempt < 10 && capture.Leaks.Count == 0; attempt++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
            }

            var lease = await waiter.WaitAsync(PoolTest.Patience);
            Assert.NotNull(lease.Value);
            Assert.Single(capture.Leaks);
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
            await lease.ReturnWithinAsync();
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task The_item_that_replaces_a_collected_lease_for_MinIdle_is_not_created_on_the_finalizer_thread()
    {
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        var created = new CreationCounter();
        var onThreadPool = new System.Collections.Concurrent.ConcurrentQueue<bool>();
        try
        {
            var pool = new AsyncPool<Item>(
                _ =>
                {
                    onThreadPool.Enqueue(Thread.CurrentThread.IsThreadPoolThread);
                    created.OnCreated();
                    return ValueTask.FromResult(new Item());
                },
                new AsyncPoolOptions<Item> { MaxSize = 1, MinIdle = 1, Name = name });
            await created.WhenCreated(1).WaitAsync(PoolTest.Patience);
            RentAndDrop(pool); // takes the idle item; at MaxSize, nothing is created to replace it

            for (int attempt = 0; attempt < 10 && capture.Leaks.Count == 0; attempt++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
            }

            Assert.Single(capture.Leaks);
            await created.WhenCreated(2).WaitAsync(PoolTest.Patience);

            // The factory is the user's code: it may block (a database open), and the finalizer thread must not wait on it.
            Assert.Equal(2, onThreadPool.Count);
            Assert.True(onThreadPool.Last(), "the replacement was created on the finalizer thread");
            await PoolTest.UntilAsync(() => pool.Statistics.Idle == 1, "the replacement going idle");
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task A_lease_reported_when_its_pool_drained_is_not_reported_again_when_it_is_collected()
    {
        var time = new FakeTimeProvider();
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 1,
                Name = name,
                DrainTimeout = TimeSpan.FromSeconds(5),
                TimeProvider = time,
            });
            RentAndDrop(pool);
            var disposal = pool.DisposeAsync().AsTask();
            time.Advance(TimeSpan.FromSeconds(5));
            await disposal.WaitAsync(PoolTest.Patience);
            Assert.Single(capture.Leaks);

            for (int attempt = 0; attempt < 10 && pool.Statistics.Destroyed == 0; attempt++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
            }

            // Collected: counted as destroyed, and not reported a second time.
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
            Assert.Single(capture.Leaks);
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_dropped_lease_is_reclaimed_while_a_returned_lease_of_the_same_item_is_still_reachable(bool tryRent)
    {
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Name = name });
            var first = await pool.RentWithinAsync();
            await first.ReturnWithinAsync();
            if (tryRent)
            {
                TryRentAndDrop(pool);
            }
            else
            {
                RentAndDrop(pool);
            }

            Assert.False(pool.TryRent(out _));

            for (int attempt = 0; attempt < 10 && capture.Leaks.Count == 0; attempt++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
            }

            // The returned lease, a local of this method, is still reachable: it must not hide the dropped one.
            Assert.Throws<ObjectDisposedException>(() => first.Value);
            Assert.Equal("PoolLease", Assert.Single(capture.Leaks).Kind);
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task A_rent_whose_ValueTask_is_never_read_counts_as_a_dropped_lease()
    {
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Name = name });
            var held = await pool.RentWithinAsync();
            RentAndNeverRead(pool); // queued: the pool is exhausted
            Assert.Equal(1, pool.Statistics.Waiters);

            // Handed to the waiting renter, who went away without reading its ValueTask.
            await held.ReturnWithinAsync();
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);

            for (int attempt = 0; attempt < 10 && capture.Leaks.Count == 0; attempt++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
            }

            Assert.Equal("PoolLease", Assert.Single(capture.Leaks).Kind);
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
            var lease = await pool.RentWithinAsync();
            Assert.NotNull(lease.Value);
            await lease.ReturnWithinAsync();
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
#pragma warning disable ASC0008 // Dropped on purpose.
    private static void TryRentAndDrop(AsyncPool<Item> pool)
    {
        Assert.True(pool.TryRent(out var lease));
        Assert.NotNull(lease.Value);
    }
#pragma warning restore ASC0008

    [MethodImpl(MethodImplOptions.NoInlining)]
#pragma warning disable CA2012 // Never read on purpose: the renter went away.
    private static void RentAndNeverRead(AsyncPool<Item> pool) => _ = pool.RentAsync();
#pragma warning restore CA2012

    // Rents in a frame of its own, so that nothing in the test's frame keeps the lease reachable.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RentAndDrop(AsyncPool<Item> pool)
    {
        var rent = pool.RentAsync();
        if (rent.IsCompletedSuccessfully)
        {
            Assert.NotNull(rent.Result.Value);
            return;
        }

        Assert.Fail("A rent from a pool with room and a synchronous factory did not complete synchronously.");
    }

    // With MaxSize 1: the item can be rented once, and then TryRent finds nothing (it was not put back twice).
    private static async Task AssertTheItemIsInThePoolOnceAsync(AsyncPool<Item> pool)
    {
        var lease = await pool.RentWithinAsync();
        Assert.False(pool.TryRent(out _));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    // What the debugger shows: the member that the type's [DebuggerDisplay] names.
    private static string DebuggerDisplayOf(PoolLease<Item> lease)
    {
        var display = typeof(PoolLease<Item>).GetCustomAttributes(typeof(System.Diagnostics.DebuggerDisplayAttribute), inherit: false);
        Assert.Equal("{DebuggerDisplay,nq}", Assert.IsType<System.Diagnostics.DebuggerDisplayAttribute>(Assert.Single(display)).Value);
        var member = typeof(PoolLease<Item>).GetProperty("DebuggerDisplay", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic);
        return Assert.IsType<string>(member!.GetValue(lease));
    }
}
