using AsyncScopes.Tests.Support;
using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Pooling;

public sealed class AsyncPoolOptionsTests
{
    private static readonly TimeSpan Patience = PoolTest.Patience;

    // --- Validation of the options ------------------------------------------------------------------------------

    [Fact]
    public void A_null_factory_throws_ArgumentNullException()
    {
        var thrown = Assert.Throws<ArgumentNullException>(() => new AsyncPool<Item>(null!));

        Assert.Equal("factory", thrown.ParamName);
    }

    [Fact]
    public void A_null_TimeProvider_throws_ArgumentException_at_construction()
    {
        var thrown = Assert.Throws<ArgumentException>(() => PoolTest.NewPool(new AsyncPoolOptions<Item> { TimeProvider = null! }));

        Assert.Equal("TimeProvider", thrown.ParamName);
    }

    [Fact]
    public void UseAsync_with_a_null_body_throws_ArgumentNullException_at_the_call()
    {
        var pool = PoolTest.NewPool();

        var withoutResult = Assert.Throws<ArgumentNullException>(() => { _ = pool.UseAsync((Func<Item, CancellationToken, Task>)null!); });
        var withResult = Assert.Throws<ArgumentNullException>(() => { _ = pool.UseAsync((Func<Item, CancellationToken, Task<int>>)null!); });

        Assert.Equal("body", withoutResult.ParamName);
        Assert.Equal("body", withResult.ParamName);
        Assert.Equal(0, pool.Statistics.Created);
    }

    [Fact]
    public async Task The_pool_is_named_in_its_messages_when_it_has_a_name()
    {
        var named = PoolTest.NewPool(new AsyncPoolOptions<Item> { Name = "orders" });
        var unnamed = PoolTest.NewPool();
        await named.DisposeWithinAsync();
        await unnamed.DisposeWithinAsync();

        var namedThrown = await Assert.ThrowsAsync<ObjectDisposedException>(() => named.RentAsync().AsTask());
        var unnamedThrown = await Assert.ThrowsAsync<ObjectDisposedException>(() => unnamed.RentAsync().AsTask());

        Assert.StartsWith("The pool 'orders' is disposed.", namedThrown.Message, StringComparison.Ordinal);
        Assert.StartsWith("The pool is disposed.", unnamedThrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Out_of_range_sizes_throw_ArgumentOutOfRangeException_at_construction()
    {
        AssertRejected(new AsyncPoolOptions<Item> { MaxSize = 0 }, "MaxSize");
        AssertRejected(new AsyncPoolOptions<Item> { MaxSize = -1 }, "MaxSize");
        AssertRejected(new AsyncPoolOptions<Item> { MaxSize = 2, MinIdle = 3 }, "MinIdle");
        AssertRejected(new AsyncPoolOptions<Item> { MinIdle = -1 }, "MinIdle");
    }

    [Fact]
    public void Negative_or_zero_timeouts_throw_ArgumentOutOfRangeException_at_construction()
    {
        var negative = TimeSpan.FromSeconds(-1);
        AssertRejected(new AsyncPoolOptions<Item> { AcquireTimeout = negative }, "AcquireTimeout");
        AssertRejected(new AsyncPoolOptions<Item> { IdleTimeout = negative }, "IdleTimeout");
        AssertRejected(new AsyncPoolOptions<Item> { MaxLifetime = negative }, "MaxLifetime");
        AssertRejected(new AsyncPoolOptions<Item> { DrainTimeout = negative }, "DrainTimeout");
        AssertRejected(new AsyncPoolOptions<Item> { AcquireTimeout = TimeSpan.Zero }, "AcquireTimeout");
        AssertRejected(new AsyncPoolOptions<Item> { IdleTimeout = TimeSpan.Zero }, "IdleTimeout");
        AssertRejected(new AsyncPoolOptions<Item> { MaxLifetime = TimeSpan.Zero }, "MaxLifetime");
    }

    [Fact]
    public async Task The_smallest_valid_options_are_accepted()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            MinIdle = 1,
            DrainTimeout = TimeSpan.Zero,
            AcquireTimeout = TimeSpan.FromTicks(1),
        });

        Assert.Equal(1, pool.Statistics.Size);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task InfiniteTimeSpan_means_no_limit_for_AcquireTimeout_IdleTimeout_and_MaxLifetime()
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 2,
            AcquireTimeout = Timeout.InfiniteTimeSpan,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            MaxLifetime = Timeout.InfiniteTimeSpan,
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var idle = await pool.RentWithinAsync();
        var held = await pool.RentWithinAsync();
        await idle.ReturnWithinAsync();
        var taken = await pool.RentWithinAsync();
        var waiter = pool.RentAsync().AsTask();

        time.Advance(TimeSpan.FromDays(60));

        Assert.False(waiter.IsCompleted);
        await taken.ReturnWithinAsync();
        var lease = await waiter.WaitAsync(Patience);
        await lease.ReturnWithinAsync();
        await held.ReturnWithinAsync();
        time.Advance(TimeSpan.FromDays(60));
        Assert.Empty(destroyed.Items);
        Assert.Equal(new PoolStatistics(Size: 2, Idle: 2, InUse: 0, Waiters: 0, Created: 2, Destroyed: 0), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    // --- AcquireTimeout -----------------------------------------------------------------------------------------

    [Fact]
    public async Task AcquireTimeout_bounds_the_whole_rent_even_when_it_has_to_wait_again()
    {
        var time = new FakeTimeProvider();
        var resetGate = PoolTest.NewGate();
        var destroyStarted = PoolTest.NewGate();

        // Completed by the test: without RunContinuationsAsynchronously on purpose, so that the renter that destroys the
        // expired item goes on, and queues again, inside the test's SetResult call.
        var destroyGate = new TaskCompletionSource();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            MaxLifetime = TimeSpan.FromSeconds(10),
            AcquireTimeout = TimeSpan.FromSeconds(5),
            TimeProvider = time,
            Reset = _ => new ValueTask(resetGate.Task),
            Destroy = _ =>
            {
                destroyStarted.TrySetResult();
                return new ValueTask(destroyGate.Task);
            },
        });
        var held = await pool.RentWithinAsync();           // created at t = 0, expires after t = 10
        time.Advance(TimeSpan.FromSeconds(8));
        var first = pool.RentAsync().AsTask();               // waits from t = 8: must give up at t = 13
        var second = pool.RentAsync().AsTask();
        var returning = held.DisposeAsync().AsTask();        // the reset holds the item until t = 11
        time.Advance(TimeSpan.FromSeconds(3));

        resetGate.SetResult();                              // first gets the item, finds it expired, destroys it
        await destroyStarted.Task.WaitAsync(Patience);
        destroyGate.SetResult();                            // second gets the freed place; first waits again
        await returning.WaitAsync(Patience);
        var secondLease = await second.WaitAsync(Patience);

        // The first renter queues again on the thread that destroyed its item; wait until it has, before moving time.
        await PoolTest.UntilAsync(() => pool.Statistics.Waiters == 1, "the first renter waiting again");

        time.Advance(TimeSpan.FromSeconds(1.9));             // t = 12.9
        Assert.False(first.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(0.2));             // t = 13.1: 5.1 s of waiting in all

        await Assert.ThrowsAsync<TimeoutException>(() => first.WaitAsync(Patience));
        Assert.Equal(0, pool.Statistics.Waiters);
        await secondLease.ReturnWithinAsync();
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
    }

    // --- IdleTimeout --------------------------------------------------------------------------------------------

    [Fact]
    public async Task IdleTimeout_destroys_an_item_idle_for_longer_and_keeps_one_idle_for_less()
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 3,
            IdleTimeout = TimeSpan.FromSeconds(10),
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var early = await pool.RentWithinAsync();
        var late = await pool.RentWithinAsync();
        var (earlyItem, lateItem) = (early.Value, late.Value);

        await early.ReturnWithinAsync();               // idle from t = 0
        time.Advance(TimeSpan.FromSeconds(6));
        await late.ReturnWithinAsync();                // idle from t = 6
        time.Advance(TimeSpan.FromSeconds(3));         // t = 9: nothing idled out yet
        Assert.Equal(new PoolStatistics(Size: 2, Idle: 2, InUse: 0, Waiters: 0, Created: 2, Destroyed: 0), pool.Statistics);

        time.Advance(TimeSpan.FromSeconds(2));         // t = 11: early idled 11 s
        await destroyed.WhenCount(1).WaitAsync(Patience);
        Assert.Same(earlyItem, destroyed.Items[0]);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);

        time.Advance(TimeSpan.FromSeconds(4));         // t = 15: late idled 9 s
        Assert.Equal(1, pool.Statistics.Idle);
        time.Advance(TimeSpan.FromSeconds(2));         // t = 17: late idled 11 s
        await destroyed.WhenCount(2).WaitAsync(Patience);
        Assert.Same(lateItem, destroyed.Items[1]);
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 2, Destroyed: 2), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task IdleTimeout_does_not_shrink_the_pool_below_MinIdle()
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 3,
            MinIdle = 1,
            IdleTimeout = TimeSpan.FromSeconds(10),
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var leases = new[] { await pool.RentWithinAsync(), await pool.RentWithinAsync(), await pool.RentWithinAsync() };
        foreach (var lease in leases)
        {
            await lease.ReturnWithinAsync();
        }

        Assert.Equal(new PoolStatistics(Size: 3, Idle: 3, InUse: 0, Waiters: 0, Created: 3, Destroyed: 0), pool.Statistics);

        // Advance off the test's thread: a sweep that keeps rescheduling itself must fail the test, not hang it.
        await AdvanceAsync(time, TimeSpan.FromSeconds(11));
        await destroyed.WhenCount(2).WaitAsync(Patience);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 3, Destroyed: 2), pool.Statistics);

        await AdvanceAsync(time, TimeSpan.FromSeconds(60));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 3, Destroyed: 2), pool.Statistics);
        Assert.Equal(2, destroyed.Items.Count);
        await pool.DisposeWithinAsync();
    }

    // --- MaxLifetime --------------------------------------------------------------------------------------------

    [Fact]
    public async Task MaxLifetime_never_destroys_a_leased_item_and_destroys_it_when_returned()
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 2,
            MaxLifetime = TimeSpan.FromSeconds(10),
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var leased = await pool.RentWithinAsync();
        var idle = await pool.RentWithinAsync();
        var (leasedItem, idleItem) = (leased.Value, idle.Value);
        await idle.ReturnWithinAsync();

        time.Advance(TimeSpan.FromSeconds(11));

        // The idle one was found by the sweep; the leased one, just as old, is left alone while leased.
        await destroyed.WhenCount(1).WaitAsync(Patience);
        Assert.Same(idleItem, destroyed.Items[0]);
        Assert.Same(leasedItem, leased.Value);
        Assert.Equal(0, leasedItem.DestroyCount);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);

        await leased.ReturnWithinAsync();

        await destroyed.WhenCount(2).WaitAsync(Patience);
        Assert.Same(leasedItem, destroyed.Items[1]);
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 2, Destroyed: 2), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task MaxLifetime_lends_an_item_exactly_as_old_as_the_limit_and_destroys_it_a_tick_later()
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            MaxLifetime = TimeSpan.FromSeconds(10),
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var first = await pool.RentWithinAsync();
        var item = first.Value;
        await first.ReturnWithinAsync();

        // The sweep is due a tick after the limit; moving the clock without timers leaves the check to the rent.
        time.AdjustTime(time.GetUtcNow() + TimeSpan.FromSeconds(10));
        var atTheLimit = await pool.RentWithinAsync();
        Assert.Same(item, atTheLimit.Value);
        await atTheLimit.ReturnWithinAsync();

        time.AdjustTime(time.GetUtcNow() + TimeSpan.FromTicks(1));
        var pastTheLimit = await pool.RentWithinAsync();
        Assert.NotSame(item, pastTheLimit.Value);
        Assert.Same(item, Assert.Single(destroyed.Items));
        await pastTheLimit.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    // With MaxLifetime too, an item at exactly its idle limit still idles out on time, not at the end of its lifetime.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task IdleTimeout_keeps_an_item_idle_exactly_as_long_as_the_limit_when_a_sweep_runs_and_destroys_it_a_tick_later(bool withMaxLifetime)
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 2,
            IdleTimeout = TimeSpan.FromSeconds(10),
            MaxLifetime = withMaxLifetime ? TimeSpan.FromHours(1) : null,
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var early = await pool.RentWithinAsync();
        var late = await pool.RentWithinAsync();
        var (earlyItem, lateItem) = (early.Value, late.Value);
        await early.ReturnWithinAsync();                // idle from t = 0
        time.Advance(TimeSpan.FromTicks(1));
        await late.ReturnWithinAsync();                 // idle from one tick later

        time.Advance(TimeSpan.FromSeconds(10));         // the sweep for early: late has idled exactly the limit

        await destroyed.WhenCount(1).WaitAsync(Patience);
        Assert.Same(earlyItem, Assert.Single(destroyed.Items));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);

        time.Advance(TimeSpan.FromTicks(1));            // late has idled a tick longer than the limit

        await destroyed.WhenCount(2).WaitAsync(Patience);
        Assert.Same(lateItem, destroyed.Items[1]);
        await pool.DisposeWithinAsync();
    }

    // One sweep per expiry: a sweep scheduled too early finds nothing to do and must be scheduled again.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_sweep_runs_once_when_the_only_idle_item_expires(bool byLifetime)
    {
        var time = new TrackingTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            IdleTimeout = byLifetime ? null : TimeSpan.FromSeconds(10),
            MaxLifetime = byLifetime ? TimeSpan.FromSeconds(10) : null,
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var lease = await pool.RentWithinAsync();
        await lease.ReturnWithinAsync();

        // Step by step: the fake clock fires each timer once per move, at the end of the move.
        time.Clock.Advance(TimeSpan.FromSeconds(10)); // exactly at the limit: not expired yet
        Assert.Equal(0, time.Fired);
        time.Clock.Advance(TimeSpan.FromTicks(1));

        await destroyed.WhenCount(1).WaitAsync(Patience);
        Assert.Equal(1, time.Fired);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_renter_cancelled_while_validating_an_item_of_a_pool_being_disposed_leaves_the_item_destroyed()
    {
        var validating = PoolTest.NewGate();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            Validate = async (_, cancellationToken) =>
            {
                validating.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
                return true;
            },
        });
        var first = await pool.RentWithinAsync();
        await first.ReturnWithinAsync();
        using var cancellation = new CancellationTokenSource();
        var rent = pool.RentAsync(cancellation.Token).AsTask();
        await validating.Task.WaitAsync(Patience);
        var disposal = pool.DisposeAsync().AsTask(); // waits for the item being validated

        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rent.WaitAsync(Patience));
        await disposal.WaitAsync(Patience);
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
    }

    [Fact]
    public async Task A_rent_whose_idle_item_failed_validation_after_the_pool_was_disposed_throws_without_making_another()
    {
        var validations = new PendingCalls<bool>();
        var created = new CreationCounter();
        var pool = new AsyncPool<Item>(created.Create, new AsyncPoolOptions<Item> { Validate = (_, _) => validations.Next().Task });
        var first = await pool.RentWithinAsync();
        await first.ReturnWithinAsync();
        var rent = pool.RentAsync().AsTask(); // validates the idle item
        await validations.WhenCalled(1).WaitAsync(Patience);
        var disposal = pool.DisposeAsync().AsTask();

        validations.Complete(false);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => rent.WaitAsync(Patience));
        await disposal.WaitAsync(Patience);
        Assert.Equal(1, created.Created);
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
    }

    [Fact]
    public async Task MaxLifetime_destroys_an_expired_item_found_idle_on_rent_and_the_renter_gets_a_new_one()
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            MaxLifetime = TimeSpan.FromSeconds(10),
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var first = await pool.RentWithinAsync();
        var old = first.Value;
        await first.ReturnWithinAsync();

        // Moves the clock without running timers: the sweep does not get there first, the rent has to notice.
        time.AdjustTime(time.GetUtcNow() + TimeSpan.FromSeconds(11));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);

        var lease = await pool.RentWithinAsync();

        Assert.NotSame(old, lease.Value);
        Assert.Same(old, Assert.Single(destroyed.Items));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task MaxLifetime_makes_TryRent_destroy_an_expired_idle_item_and_find_nothing()
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            MaxLifetime = TimeSpan.FromSeconds(10),
            TimeProvider = time,
            Destroy = destroyed.Destroy,
        });
        var first = await pool.RentWithinAsync();
        var old = first.Value;
        await first.ReturnWithinAsync();
        time.AdjustTime(time.GetUtcNow() + TimeSpan.FromSeconds(11));

        Assert.False(pool.TryRent(out _));

        await destroyed.WhenCount(1).WaitAsync(Patience);
        Assert.Same(old, destroyed.Items[0]);
        Assert.Equal(1, pool.Statistics.Destroyed);
        var lease = await pool.RentWithinAsync();
        Assert.NotSame(old, lease.Value);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    // --- MinIdle ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task MinIdle_keeps_that_many_items_idle_in_the_background_within_MaxSize()
    {
        var created = new CreationCounter();
        var pool = new AsyncPool<Item>(created.Create, new AsyncPoolOptions<Item> { MaxSize = 3, MinIdle = 2 });

        await created.WhenCreated(2).WaitAsync(Patience);
        Assert.Equal(new PoolStatistics(Size: 2, Idle: 2, InUse: 0, Waiters: 0, Created: 2, Destroyed: 0), pool.Statistics);

        var first = await pool.RentWithinAsync();
        await created.WhenCreated(3).WaitAsync(Patience);
        Assert.Equal(new PoolStatistics(Size: 3, Idle: 2, InUse: 1, Waiters: 0, Created: 3, Destroyed: 0), pool.Statistics);

        // At MaxSize the pool cannot refill its idle items any more.
        var second = await pool.RentWithinAsync();
        Assert.Equal(new PoolStatistics(Size: 3, Idle: 1, InUse: 2, Waiters: 0, Created: 3, Destroyed: 0), pool.Statistics);
        Assert.Equal(3, created.Created);

        await first.ReturnWithinAsync();
        await second.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_rent_that_takes_an_idle_item_from_the_list_tops_up_MinIdle_counting_the_creations_under_way()
    {
        var created = new PendingCalls<Item>();
        var pool = new AsyncPool<Item>(_ => created.Next().Task, new AsyncPoolOptions<Item> { MaxSize = 5, MinIdle = 2 });
        await created.WhenCalled(2).WaitAsync(Patience);
        created.Complete(new Item());
        created.Complete(new Item());
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 2, "the first two items going idle");

        // The first rent takes the item returned last; its top-up is under way when the second rent takes the other.
        var first = await pool.RentWithinAsync();
        await created.WhenCalled(3).WaitAsync(Patience);
        var second = await pool.RentWithinAsync();

        // MinIdle 2, no item idle, one being created: one more, not two.
        await created.WhenCalled(4).WaitAsync(Patience);
        Assert.Equal(4, created.Called);
        created.Complete(new Item());
        created.Complete(new Item());
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 2, "the two new items going idle");
        Assert.Equal(new PoolStatistics(Size: 4, Idle: 2, InUse: 2, Waiters: 0, Created: 4, Destroyed: 0), pool.Statistics);
        Assert.Equal(4, created.Called);
        await first.ReturnWithinAsync();
        await second.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task MinIdle_retry_timers_are_released_when_they_fire_and_none_is_made_after_disposal()
    {
        var time = new TrackingTimeProvider();
        string name = PoolTest.UniqueName();
        var created = new PendingCalls<Item>();
        using var capture = new PoolDiagnosticsCapture(name);
        var pool = new AsyncPool<Item>(
            _ => created.Next().Task,
            new AsyncPoolOptions<Item> { MaxSize = 2, MinIdle = 1, TimeProvider = time, Name = name, DrainTimeout = TimeSpan.FromSeconds(5) });
        created.Fail(new InvalidOperationException("the first creation failed"));
        await capture.WhenFailures(1).WaitAsync(Patience);
        Assert.Equal(1, time.Undisposed); // the retry's timer

        time.Clock.Advance(TimeSpan.FromSeconds(1)); // the retry: its timer is released, and a creation starts
        await created.WhenCalled(2).WaitAsync(Patience);
        Assert.Equal(0, time.Undisposed);

        // Disposed while the retry's creation is under way; the creation fails after that: no retry any more.
        var disposal = pool.DisposeAsync().AsTask();
        created.Fail(new InvalidOperationException("the second creation failed"));
        await disposal.WaitAsync(Patience);
        await capture.WhenFailures(2).WaitAsync(Patience);
        Assert.Equal(0, time.Undisposed);
        Assert.Equal(2, created.Called);
    }

    [Fact]
    public async Task MinIdle_replaces_an_idle_item_destroyed_for_its_age_in_the_background()
    {
        var time = new FakeTimeProvider();
        var created = new CreationCounter();
        var destroyed = new DestroyLog();
        var pool = new AsyncPool<Item>(created.Create, new AsyncPoolOptions<Item>
            {
                MaxSize = 2,
                MinIdle = 1,
                MaxLifetime = TimeSpan.FromSeconds(10),
                TimeProvider = time,
                Destroy = destroyed.Destroy,
            });
        await created.WhenCreated(1).WaitAsync(Patience);

        await AdvanceAsync(time, TimeSpan.FromSeconds(11));

        await destroyed.WhenCount(1).WaitAsync(Patience);
        await created.WhenCreated(2).WaitAsync(Patience);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        var lease = await pool.RentWithinAsync();
        Assert.Equal(0, lease.Value.DestroyCount);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task MinIdle_retries_a_failing_factory_with_backoff_and_reports_its_failures_instead_of_throwing()
    {
        var time = new FakeTimeProvider();
        string name = PoolTest.UniqueName();
        var failures = new[]
        {
            new InvalidOperationException("first failure"),
            new InvalidOperationException("second failure"),
            new InvalidOperationException("third failure"),
        };
        var created = new CreationCounter();
        int calls = 0;
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            // Fails three times (synchronously, so that each attempt completes inside the call that starts it), then
            // succeeds. Bounded, so that a pool that retries without waiting cannot recurse forever.
            var pool = new AsyncPool<Item>(
                _ =>
                {
                    int call = Interlocked.Increment(ref calls);
                    if (call <= failures.Length)
                    {
                        return ValueTask.FromException<Item>(failures[call - 1]);
                    }

                    created.OnCreated();
                    return ValueTask.FromResult(new Item());
                },
                new AsyncPoolOptions<Item> { MaxSize = 2, MinIdle = 1, TimeProvider = time, Name = name });

            await capture.WhenFailures(1).WaitAsync(Patience);
            Assert.Equal(1, Volatile.Read(ref calls));
            Assert.Equal(default, pool.Statistics);

            time.Advance(TimeSpan.FromMilliseconds(999));
            Assert.Equal(1, Volatile.Read(ref calls));
            time.Advance(TimeSpan.FromMilliseconds(1));  // 1 s after the first failure
            await capture.WhenFailures(2).WaitAsync(Patience);
            Assert.Equal(2, Volatile.Read(ref calls));

            time.Advance(TimeSpan.FromMilliseconds(1999));
            Assert.Equal(2, Volatile.Read(ref calls));
            time.Advance(TimeSpan.FromMilliseconds(1));  // 2 s after the second failure
            await capture.WhenFailures(3).WaitAsync(Patience);
            Assert.Equal(3, Volatile.Read(ref calls));

            time.Advance(TimeSpan.FromMilliseconds(3999));
            Assert.Equal(3, Volatile.Read(ref calls));
            time.Advance(TimeSpan.FromMilliseconds(1));  // 4 s after the third failure: succeeds
            await created.WhenCreated(1).WaitAsync(Patience);

            Assert.Equal(4, Volatile.Read(ref calls));
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
            Assert.Equal<Exception>(failures, capture.Failures);
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task MinIdle_retries_after_a_second_again_once_a_creation_succeeded()
    {
        var time = new FakeTimeProvider();
        string name = PoolTest.UniqueName();
        var calls = new PendingCalls<Item>();
        using var capture = new PoolDiagnosticsCapture(name);
        var pool = new AsyncPool<Item>(_ => calls.Next().Task, new AsyncPoolOptions<Item> { MaxSize = 1, MinIdle = 1, TimeProvider = time, Name = name });
        calls.Fail(new InvalidOperationException("the first creation failed")); // retried after 1 s, the next after 2 s
        await capture.WhenFailures(1).WaitAsync(Patience);
        time.Advance(TimeSpan.FromSeconds(1));
        await calls.WhenCalled(2).WaitAsync(Patience);
        calls.Complete(new Item());
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 1, "the second creation's item going idle");

        // Its item destroyed, the pool makes another for MinIdle; that creation fails, and is retried after 1 s again.
        var lease = await pool.RentWithinAsync();
        lease.Discard();
        await lease.ReturnWithinAsync();
        await calls.WhenCalled(3).WaitAsync(Patience);
        calls.Fail(new InvalidOperationException("the third creation failed"));
        await capture.WhenFailures(2).WaitAsync(Patience);
        time.Advance(TimeSpan.FromSeconds(1));

        await calls.WhenCalled(4).WaitAsync(Patience);
        calls.Complete(new Item());
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 1, "the fourth creation's item going idle");
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task An_item_kept_idle_for_MinIdle_past_its_IdleTimeout_is_still_destroyed_at_its_MaxLifetime()
    {
        var time = new FakeTimeProvider();
        var created = new CreationCounter();
        var destroyed = new DestroyLog();
        var pool = new AsyncPool<Item>(created.Create, new AsyncPoolOptions<Item>
            {
                MaxSize = 2,
                MinIdle = 1,
                IdleTimeout = TimeSpan.FromSeconds(10),
                MaxLifetime = TimeSpan.FromSeconds(60),
                TimeProvider = time,
                Destroy = destroyed.Destroy,
            });
        await created.WhenCreated(1).WaitAsync(Patience);
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 1, "the MinIdle item going idle");

        await AdvanceAsync(time, TimeSpan.FromSeconds(11)); // idled out, but kept: it is the only idle item
        Assert.Empty(destroyed.Items);
        await AdvanceAsync(time, TimeSpan.FromSeconds(50)); // t = 61: older than MaxLifetime

        await destroyed.WhenCount(1).WaitAsync(Patience);
        await created.WhenCreated(2).WaitAsync(Patience);
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 1, "the replacement going idle");
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task MinIdle_does_not_retry_an_asynchronously_failing_factory_before_the_backoff()
    {
        var time = new FakeTimeProvider();
        string name = PoolTest.UniqueName();
        var failure = new InvalidOperationException("the background creation failed");
        var created = new CreationCounter();
        int calls = 0;
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = new AsyncPool<Item>(
                async _ =>
                {
                    int call = Interlocked.Increment(ref calls);
                    await Task.Yield();
                    if (call == 1)
                    {
                        throw failure;
                    }

                    created.OnCreated();
                    return new Item();
                },
                new AsyncPoolOptions<Item> { MaxSize = 2, MinIdle = 1, TimeProvider = time, Name = name });

            await capture.WhenFailures(1).WaitAsync(Patience);

            Assert.Equal(1, Volatile.Read(ref calls));
            Assert.Same(failure, Assert.Single(capture.Failures));
            Assert.Equal(default, pool.Statistics);

            time.Advance(TimeSpan.FromSeconds(1));
            await created.WhenCreated(1).WaitAsync(Patience);
            Assert.Equal(2, Volatile.Read(ref calls));
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    // --- Validate -----------------------------------------------------------------------------------------------

    // A pool with an IdleTimeout keeps its idle items in its list only (it sweeps them), one without keeps the last
    // returned apart: both validate what was idle.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Validate_false_destroys_the_idle_item_and_the_renter_gets_another_and_new_items_are_not_validated(bool sweeps)
    {
        var validated = new ConcurrentQueue<Item>();
        Item? invalid = null;
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 2,
            IdleTimeout = sweeps ? TimeSpan.FromHours(1) : null,
            Validate = (item, _) =>
            {
                validated.Enqueue(item);
                return ValueTask.FromResult(!ReferenceEquals(item, invalid));
            },
            Destroy = destroyed.Destroy,
        });
        var first = await pool.RentWithinAsync();
        invalid = first.Value;
        Assert.Empty(validated);
        await first.ReturnWithinAsync();

        var second = await pool.RentWithinAsync();

        Assert.NotSame(invalid, second.Value);
        Assert.Same(invalid, Assert.Single(validated)); // the replacement, just created, was not validated
        Assert.Same(invalid, Assert.Single(destroyed.Items));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);

        // An idle item that passes is lent as is.
        var valid = second.Value;
        await second.ReturnWithinAsync();
        var third = await pool.RentWithinAsync();
        Assert.Same(valid, third.Value);
        Assert.Equal(2, validated.Count);
        await third.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task Validate_that_throws_destroys_the_item_reports_the_failure_and_the_renter_gets_another()
    {
        string name = PoolTest.UniqueName();
        var failure = new InvalidOperationException("validation blew up");
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 1,
                Name = name,
                Validate = (_, _) => ValueTask.FromException<bool>(failure),
            });
            var first = await pool.RentWithinAsync();
            var old = first.Value;
            await first.ReturnWithinAsync();

            var second = await pool.RentWithinAsync();

            Assert.NotSame(old, second.Value);
            Assert.Same(failure, Assert.Single(capture.Failures));
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
            await second.ReturnWithinAsync();
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task Validate_is_not_called_for_an_item_handed_straight_to_a_waiter()
    {
        int validations = 0;
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Validate = (_, _) =>
            {
                Interlocked.Increment(ref validations);
                return ValueTask.FromResult(true);
            },
        });
        var held = await pool.RentWithinAsync();
        var item = held.Value;
        var waiter = pool.RentAsync().AsTask();

        await held.ReturnWithinAsync();
        var lease = await waiter.WaitAsync(Patience);

        Assert.Same(item, lease.Value);
        Assert.Equal(0, validations);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_renter_cancelled_during_validation_takes_nothing_and_the_item_goes_to_the_next_waiter()
    {
        var validating = PoolTest.NewGate();
        int validations = 0;
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Destroy = destroyed.Destroy,
            Validate = async (_, cancellationToken) =>
            {
                if (Interlocked.Increment(ref validations) == 1)
                {
                    validating.TrySetResult();
                    await new TaskCompletionSource().Task.WaitAsync(cancellationToken); // ends only by cancellation
                }

                return true;
            },
        });
        var first = await pool.RentWithinAsync();
        var item = first.Value;
        await first.ReturnWithinAsync();
        using var cancellation = new CancellationTokenSource();

        var cancelled = pool.RentAsync(cancellation.Token).AsTask();
        await validating.Task.WaitAsync(Patience);
        var next = pool.RentAsync().AsTask();
        Assert.Equal(1, pool.Statistics.Waiters);
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Patience));
        var lease = await next.WaitAsync(Patience);
        Assert.Same(item, lease.Value);
        Assert.Equal(2, validations); // an idle item whose check did not finish is checked before the waiter gets it
        Assert.Empty(destroyed.Items);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    // --- Reset --------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Reset_is_called_on_every_return_and_the_item_stays_in_the_pool()
    {
        var resets = new ConcurrentQueue<Item>();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Reset = item =>
            {
                resets.Enqueue(item);
                return ValueTask.CompletedTask;
            },
        });
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;
        Assert.Empty(resets);

        await lease.ReturnWithinAsync();
        Assert.Same(item, Assert.Single(resets));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);

        var again = await pool.RentWithinAsync();
        Assert.Same(item, again.Value);
        await again.ReturnWithinAsync();
        Assert.Equal(2, resets.Count);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task Reset_ends_before_a_waiter_gets_the_item_and_does_not_run_on_a_discarded_item()
    {
        var resetGate = PoolTest.NewGate();
        var resets = new ConcurrentQueue<Item>();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Destroy = destroyed.Destroy,
            Reset = async item =>
            {
                resets.Enqueue(item);
                await resetGate.Task;
            },
        });
        var held = await pool.RentWithinAsync();
        var item = held.Value;
        var waiter = pool.RentAsync().AsTask();

        var returning = held.DisposeAsync().AsTask();
        Assert.Same(item, Assert.Single(resets));
        Assert.False(returning.IsCompleted);
        Assert.False(waiter.IsCompleted);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 1, Created: 1, Destroyed: 0), pool.Statistics);

        resetGate.SetResult();
        await returning.WaitAsync(Patience);
        var lease = await waiter.WaitAsync(Patience);
        Assert.Same(item, lease.Value);

        lease.Discard();
        await lease.ReturnWithinAsync();
        Assert.Single(resets); // destroyed, not reset
        Assert.Same(item, Assert.Single(destroyed.Items));
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_Reset_that_throws_destroys_the_item_and_reports_the_failure()
    {
        string name = PoolTest.UniqueName();
        var failure = new InvalidOperationException("reset failed");
        var destroyed = new DestroyLog();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 1,
                Name = name,
                Reset = _ => ValueTask.FromException(failure),
                Destroy = destroyed.Destroy,
            });
            var lease = await pool.RentWithinAsync();
            var item = lease.Value;

            await lease.ReturnWithinAsync(); // the failure is not thrown at the one returning the lease

            Assert.Same(item, Assert.Single(destroyed.Items));
            Assert.Same(failure, Assert.Single(capture.Failures));
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
            var next = await pool.RentWithinAsync();
            Assert.NotSame(item, next.Value);
            await next.DisposeAsync(); // Reset fails again: destroyed again
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    // --- Destroy ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_custom_Destroy_is_called_with_the_item_instead_of_disposing_it()
    {
        var destroyed = new ConcurrentQueue<AsyncDisposableItem>();
        var pool = new AsyncPool<AsyncDisposableItem>(
            _ => ValueTask.FromResult(new AsyncDisposableItem()),
            new AsyncPoolOptions<AsyncDisposableItem>
            {
                Destroy = item =>
                {
                    destroyed.Enqueue(item);
                    return ValueTask.CompletedTask;
                },
            });
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;

        lease.Discard();
        await lease.ReturnWithinAsync();

        Assert.Same(item, Assert.Single(destroyed));
        Assert.Equal(0, item.AsyncDisposals);
        Assert.Equal(0, item.Disposals);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task The_default_Destroy_calls_DisposeAsync_of_an_async_disposable_item_once()
    {
        var pool = new AsyncPool<AsyncDisposableItem>(_ => ValueTask.FromResult(new AsyncDisposableItem()));
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;

        lease.Discard();
        await lease.ReturnWithinAsync();

        Assert.Equal(1, item.AsyncDisposals);
        Assert.Equal(0, item.Disposals);
        Assert.Equal(1, pool.Statistics.Destroyed);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task The_default_Destroy_calls_Dispose_of_a_disposable_item_once()
    {
        var pool = new AsyncPool<DisposableItem>(_ => ValueTask.FromResult(new DisposableItem()));
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;

        lease.Discard();
        await lease.ReturnWithinAsync();

        Assert.Equal(1, item.Disposals);
        Assert.Equal(1, pool.Statistics.Destroyed);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_Destroy_that_throws_is_reported_and_still_frees_the_slot()
    {
        string name = PoolTest.UniqueName();
        var failure = new InvalidOperationException("destroy failed");
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 1,
                Name = name,
                Destroy = _ => ValueTask.FromException(failure),
            });
            var lease = await pool.RentWithinAsync();
            var item = lease.Value;

            lease.Discard();
            await lease.ReturnWithinAsync();

            Assert.Same(failure, Assert.Single(capture.Failures));
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
            var next = await pool.RentWithinAsync();
            Assert.NotSame(item, next.Value);
            await next.ReturnWithinAsync();
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    // --- DiscardOn ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task DiscardOn_true_destroys_the_item_when_the_UseAsync_body_throws()
    {
        var failure = new InvalidOperationException("the body failed");
        var seen = new ConcurrentQueue<Exception>();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Destroy = destroyed.Destroy,
            DiscardOn = e =>
            {
                seen.Enqueue(e);
                return true;
            },
        });
        Item? used = null;

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => pool.UseAsync((item, _) =>
        {
            used = item;
            return Task.FromException(failure);
        }).WaitAsync(Patience));

        Assert.Same(failure, thrown);
        Assert.Same(failure, Assert.Single(seen));
        Assert.NotNull(used);
        Assert.Same(used, Assert.Single(destroyed.Items));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task DiscardOn_false_returns_the_item_when_the_UseAsync_body_throws()
    {
        var failure = new ArgumentException("a failure that does not concern the item");
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            DiscardOn = e => e is not ArgumentException,
        });
        Item? used = null;

        var thrown = await Assert.ThrowsAsync<ArgumentException>(() => pool.UseAsync<int>((item, _) =>
        {
            used = item;
            return Task.FromException<int>(failure);
        }).WaitAsync(Patience));

        Assert.Same(failure, thrown);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        var lease = await pool.RentWithinAsync();
        Assert.Same(used, lease.Value);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_DiscardOn_that_throws_destroys_the_item_reports_its_failure_and_the_body_exception_propagates()
    {
        string name = PoolTest.UniqueName();
        var bodyFailure = new InvalidOperationException("the body failed");
        var predicateFailure = new ArgumentException("the predicate failed");
        var destroyed = new DestroyLog();
        var capture = new PoolDiagnosticsCapture(name);
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                MaxSize = 1,
                Name = name,
                Destroy = destroyed.Destroy,
                DiscardOn = _ => throw predicateFailure,
            });
            Item? used = null;

            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => pool.UseAsync((item, _) =>
            {
                used = item;
                return Task.FromException(bodyFailure);
            }).WaitAsync(Patience));

            Assert.Same(bodyFailure, thrown);
            Assert.Same(predicateFailure, Assert.Single(capture.Failures));
            Assert.NotNull(used);
            Assert.Same(used, Assert.Single(destroyed.Items));
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
            await pool.DisposeWithinAsync();
        }
        finally
        {
            capture.Dispose();
        }
    }

    [Fact]
    public async Task Without_DiscardOn_every_failure_of_the_UseAsync_body_destroys_the_item()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });

        await Assert.ThrowsAsync<ArgumentException>(() =>
            pool.UseAsync((_, _) => Task.FromException(new ArgumentException("one kind"))).WaitAsync(Patience));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);

        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            pool.UseAsync<int>((_, _) => throw new InvalidOperationException("another kind, thrown synchronously")).WaitAsync(Patience));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 2, Destroyed: 2), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_UseAsync_body_that_succeeds_returns_the_item_even_when_DiscardOn_would_discard()
    {
        int asked = 0;
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            DiscardOn = _ =>
            {
                Interlocked.Increment(ref asked);
                return true;
            },
        });

        await pool.UseAsync((_, _) => Task.CompletedTask).WaitAsync(Patience);

        Assert.Equal(0, asked);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    private static void AssertRejected(AsyncPoolOptions<Item> options, string parameter)
    {
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncPool<Item>(_ => ValueTask.FromResult(new Item()), options));
        Assert.Equal(parameter, thrown.ParamName);
    }

    private static Task AdvanceAsync(FakeTimeProvider time, TimeSpan delta) =>
        Task.Run(() => time.Advance(delta)).WaitAsync(Patience);
    [Fact]
    public async Task TryRent_tops_up_MinIdle_like_RentAsync()
    {
        var created = new CreationCounter();
        var pool = new AsyncPool<Item>(created.Create, new AsyncPoolOptions<Item> { MaxSize = 2, MinIdle = 1 });
        await created.WhenCreated(1).WaitAsync(PoolTest.Patience);
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 1, "the first item going idle");

        Assert.True(pool.TryRent(out var lease));

        // The idle item was taken: another is created to keep one idle.
        await created.WhenCreated(2).WaitAsync(PoolTest.Patience);
        await PoolTest.UntilAsync(() => pool.Statistics.Idle == 1, "the replacement going idle");
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }
}
