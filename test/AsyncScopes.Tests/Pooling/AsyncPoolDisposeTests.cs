using AsyncScopes.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Pooling;

public sealed class AsyncPoolDisposeTests
{
    private static readonly TimeSpan Patience = PoolTest.Patience;

    [Fact]
    public async Task After_disposal_every_way_to_rent_throws_ObjectDisposedException()
    {
        var pool = PoolTest.NewPool();
        var lease = await pool.RentWithinAsync();
        await lease.ReturnWithinAsync();

        await pool.DisposeWithinAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pool.RentAsync());
        Assert.Throws<ObjectDisposedException>(() => pool.TryRent(out _));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.UseAsync((_, _) => Task.CompletedTask));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.UseAsync((_, _) => Task.FromResult(1)));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
    }

    [Fact]
    public async Task Disposal_fails_the_current_waiters_with_ObjectDisposedException()
    {
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Destroy = destroyed.Destroy });
        var held = await pool.RentWithinAsync();
        var first = pool.RentAsync().AsTask();
        var second = pool.RentAsync().AsTask();
        Assert.Equal(2, pool.Statistics.Waiters);

        var disposal = pool.DisposeAsync().AsTask();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => first.WaitAsync(Patience));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => second.WaitAsync(Patience));
        Assert.Equal(0, pool.Statistics.Waiters);
        Assert.False(disposal.IsCompleted);

        var item = held.Value;
        await held.ReturnWithinAsync();

        await disposal.WaitAsync(Patience);
        Assert.Same(item, Assert.Single(destroyed.Items));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
    }

    [Fact]
    public async Task Disposal_destroys_idle_items_at_once_and_leased_ones_when_returned_and_completes_with_the_last()
    {
        string name = PoolTest.UniqueName();
        var destroyed = new DestroyLog();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 3, Name = name, Destroy = destroyed.Destroy });
            var idle = await pool.RentWithinAsync();
            var first = await pool.RentWithinAsync();
            var second = await pool.RentWithinAsync();
            var (idleItem, firstItem, secondItem) = (idle.Value, first.Value, second.Value);
            await idle.ReturnWithinAsync();

            var disposal = pool.DisposeAsync().AsTask();

            await destroyed.WhenCount(1).WaitAsync(Patience);
            Assert.Same(idleItem, Assert.Single(destroyed.Items));
            Assert.Same(firstItem, first.Value); // leased items stay usable until returned
            Assert.Equal(0, firstItem.DestroyCount);
            Assert.Equal(new PoolStatistics(Size: 2, Idle: 0, InUse: 2, Waiters: 0, Created: 3, Destroyed: 1), pool.Statistics);
            Assert.False(disposal.IsCompleted);

            await first.ReturnWithinAsync();
            Assert.Equal(2, destroyed.Items.Count);
            Assert.Same(firstItem, destroyed.Items[1]);
            Assert.False(disposal.IsCompleted);

            await second.ReturnWithinAsync();
            await disposal.WaitAsync(Patience);

            Assert.Same(secondItem, destroyed.Items[2]);
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 3, Destroyed: 3), pool.Statistics);
            Assert.Empty(capture.Leaks);
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task Disposal_waits_until_a_returned_item_is_destroyed_even_when_it_returns_while_idle_items_are_being_destroyed()
    {
        // Completed by the test, without RunContinuationsAsynchronously and on a thread without a synchronization
        // context, on purpose: the destruction and the disposal go on inside the SetResult call, so that the disposal
        // has decided whether it is drained when SetResult returns.
        var idleDestroyGate = new TaskCompletionSource();
        var returnedDestroyGate = new TaskCompletionSource();
        Item? idleItem = null;
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 2,
            Destroy = async item =>
            {
                await (ReferenceEquals(item, idleItem) ? idleDestroyGate.Task : returnedDestroyGate.Task).ConfigureAwait(false);
                await destroyed.Destroy(item).ConfigureAwait(false);
            },
        });
        var idle = await pool.RentWithinAsync();
        var leased = await pool.RentWithinAsync();
        idleItem = idle.Value;
        var leasedItem = leased.Value;
        await idle.ReturnWithinAsync();

        var disposal = pool.DisposeAsync().AsTask();  // destroying the idle item: held by its gate
        var returning = leased.DisposeAsync().AsTask(); // destroying the returned item: held by its gate
        Assert.False(returning.IsCompleted);

        await Task.Run(idleDestroyGate.SetResult).WaitAsync(Patience);
        Assert.Same(idleItem, Assert.Single(destroyed.Items));
        Assert.False(disposal.IsCompleted, "The disposal completed while a returned item was still being destroyed.");

        await Task.Run(returnedDestroyGate.SetResult).WaitAsync(Patience);
        await returning.WaitAsync(Patience);
        await disposal.WaitAsync(Patience);
        Assert.Same(leasedItem, destroyed.Items[1]);
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 2, Destroyed: 2), pool.Statistics);
    }

    [Fact]
    public async Task Disposal_gives_up_after_DrainTimeout_and_reports_each_lease_still_out_as_a_leak()
    {
        var time = new FakeTimeProvider();
        string name = PoolTest.UniqueName();
        var destroyed = new DestroyLog();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 3,
                DrainTimeout = TimeSpan.FromSeconds(10),
                TimeProvider = time,
                Name = name,
                Destroy = destroyed.Destroy,
            });
            var straggler = await pool.RentWithinAsync();
            var another = await pool.RentWithinAsync();
            var returned = await pool.RentWithinAsync();
            var (stragglerItem, anotherItem) = (straggler.Value, another.Value);

            var disposal = pool.DisposeAsync().AsTask();
            await returned.ReturnWithinAsync();
            time.Advance(TimeSpan.FromSeconds(9));
            Assert.False(disposal.IsCompleted);

            time.Advance(TimeSpan.FromSeconds(2));
            await disposal.WaitAsync(Patience);

            Assert.Equal(2, capture.Leaks.Count);
            Assert.All(capture.Leaks, leak =>
            {
                Assert.Equal("PoolLease", leak.Kind);
                Assert.Equal(name, leak.Name);
            });
            Assert.Empty(capture.Failures); // no destruction was left running
            Assert.Single(destroyed.Items);
            Assert.Equal(2, pool.Statistics.InUse);

            // A straggler that comes back late is still destroyed, and not reported again.
            await straggler.ReturnWithinAsync();
            await another.ReturnWithinAsync();
            Assert.Contains(stragglerItem, destroyed.Items);
            Assert.Contains(anotherItem, destroyed.Items);
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 3, Destroyed: 3), pool.Statistics);
            Assert.Equal(2, capture.Leaks.Count);
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task Disposal_releases_the_sweep_timer_and_a_pending_MinIdle_retry_timer()
    {
        var time = new TrackingTimeProvider();
        string name = PoolTest.UniqueName();
        using var capture = new PoolDiagnosticsCapture(name);
        var pool = new AsyncPool<Item>(
            _ => ValueTask.FromException<Item>(new InvalidOperationException("the factory is down")),
            new AsyncPoolOptions<Item> { MinIdle = 1, IdleTimeout = TimeSpan.FromMinutes(1), TimeProvider = time, Name = name });
        await capture.WhenFailures(1).WaitAsync(Patience);
        Assert.Equal(2, time.Undisposed); // the sweep's timer, and the retry's

        await pool.DisposeWithinAsync();

        Assert.Equal(0, time.Undisposed);
    }

    [Fact]
    public async Task Disposing_twice_returns_the_same_wait()
    {
        var pool = PoolTest.NewPool();
        var lease = await pool.RentWithinAsync();

        var first = pool.DisposeAsync().AsTask();
        var second = pool.DisposeAsync().AsTask();

        Assert.Same(first, second);
        Assert.False(second.IsCompleted);
        await lease.ReturnWithinAsync();
        await second.WaitAsync(Patience);
        Assert.True(first.IsCompletedSuccessfully);

        var third = pool.DisposeAsync();
        Assert.True(third.IsCompletedSuccessfully);
        await third;
    }

    [Fact]
    public async Task Disposal_while_an_item_is_being_created_destroys_it_fails_its_renter_and_waits_for_it()
    {
        var factoryGate = PoolTest.NewGate();
        var destroyed = new DestroyLog();
        var pool = new AsyncPool<Item>(
            async _ =>
            {
                await factoryGate.Task;
                return new Item();
            },
            new AsyncPoolOptions<Item> { MaxSize = 1, Destroy = destroyed.Destroy });
        var creating = pool.RentAsync().AsTask();

        var disposal = pool.DisposeAsync().AsTask();
        Assert.False(disposal.IsCompleted);

        factoryGate.SetResult();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => creating.WaitAsync(Patience));
        await disposal.WaitAsync(Patience);
        Assert.Single(destroyed.Items);
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
    }

    [Fact]
    public async Task Disposing_an_idle_pool_with_a_zero_DrainTimeout_completes_and_reports_no_leak()
    {
        string name = PoolTest.UniqueName();
        var destroyed = new DestroyLog();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                DrainTimeout = TimeSpan.Zero,
                Name = name,
                Destroy = destroyed.Destroy,
            });
            var lease = await pool.RentWithinAsync();
            await lease.ReturnWithinAsync();

            await pool.DisposeWithinAsync();

            Assert.Single(destroyed.Items);
            Assert.Empty(capture.Leaks);
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task Disposal_starts_every_idle_destruction_at_once_and_reports_the_ones_still_running_when_the_drain_timeout_elapses()
    {
        var time = new FakeTimeProvider();
        string name = PoolTest.UniqueName();
        var capture = new PoolDiagnosticsCapture(name);
        var started = new System.Collections.Concurrent.ConcurrentQueue<Item>();
        var hanging = PoolTest.NewGate(); // a close on a dead network: never completes during the test
        var allStarted = PoolTest.NewGate();
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 3,
                Name = name,
                DrainTimeout = TimeSpan.FromSeconds(5),
                TimeProvider = time,
                Destroy = item =>
                {
                    started.Enqueue(item);
                    if (started.Count == 3)
                    {
                        allStarted.TrySetResult();
                    }

                    return new ValueTask(hanging.Task);
                },
            });
            var leases = new[] { await pool.RentWithinAsync(), await pool.RentWithinAsync(), await pool.RentWithinAsync() };
            foreach (var lease in leases)
            {
                await lease.ReturnWithinAsync();
            }

            var disposal = pool.DisposeAsync().AsTask();

            // Not one after another: every destruction is under way although none has finished.
            await allStarted.Task.WaitAsync(Patience);
            Assert.False(disposal.IsCompleted);

            time.Advance(TimeSpan.FromSeconds(5));
            await disposal.WaitAsync(Patience);

            var report = Assert.IsType<TimeoutException>(Assert.Single(capture.Failures));
            Assert.Contains("3 item(s)", report.Message, StringComparison.Ordinal);
            Assert.Contains(name, report.Message, StringComparison.Ordinal);
            Assert.Empty(capture.Leaks); // nothing was leased
        }
        finally
        {
            hanging.TrySetResult();
            capture.Dispose();
        }
    }
}
