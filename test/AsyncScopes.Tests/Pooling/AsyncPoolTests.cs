using AsyncScopes.Tests.Support;
using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Pooling;

public sealed class AsyncPoolTests
{
    private static readonly TimeSpan Patience = PoolTest.Patience;

    // --- Renting and returning ----------------------------------------------------------------------------------

    [Fact]
    public async Task A_returned_item_is_lent_again_instead_of_creating_a_new_one()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 4 });
        var first = await pool.RentWithinAsync();
        var item = first.Value;
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);

        await first.ReturnWithinAsync();
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);

        var second = await pool.RentWithinAsync();
        Assert.Same(item, second.Value);
        Assert.Equal(1, pool.Statistics.Created);
        await second.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task Waiters_are_served_first_in_first_out()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var held = await pool.RentWithinAsync();
        var order = new ConcurrentQueue<int>();

        var waiters = new Task[5];
        for (int i = 0; i < waiters.Length; i++)
        {
            waiters[i] = TakeRecordAndReturnAsync(pool, i, order);
        }

        Assert.Equal(5, pool.Statistics.Waiters);
        Assert.Empty(order);

        await held.ReturnWithinAsync();
        await Task.WhenAll(waiters).WaitAsync(Patience);

        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, order);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_cancelled_waiter_never_swallows_an_item_the_next_waiter_gets_it()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var held = await pool.RentWithinAsync();
        var item = held.Value;
        using var cancellation = new CancellationTokenSource();

        var first = pool.RentAsync(cancellation.Token).AsTask();
        var second = pool.RentAsync().AsTask();
        Assert.Equal(2, pool.Statistics.Waiters);

        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.WaitAsync(Patience));
        Assert.Equal(1, pool.Statistics.Waiters);
        Assert.False(second.IsCompleted);

        await held.ReturnWithinAsync();

        var lease = await second.WaitAsync(Patience);
        Assert.Same(item, lease.Value);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_cancelled_only_waiter_leaves_the_returned_item_idle()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var held = await pool.RentWithinAsync();
        using var cancellation = new CancellationTokenSource();
        var waiter = pool.RentAsync(cancellation.Token).AsTask();

        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter.WaitAsync(Patience));
        await held.ReturnWithinAsync();

        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        Assert.True(pool.TryRent(out var lease));
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_rent_with_an_already_cancelled_token_is_cancelled_and_takes_nothing()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pool.RentAsync(new CancellationToken(canceled: true)));

        Assert.Equal(default, pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_timed_out_waiter_gets_a_TimeoutException_naming_the_pool_and_its_size_and_takes_nothing()
    {
        var time = new FakeTimeProvider();
        string name = PoolTest.UniqueName();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 3,
            AcquireTimeout = TimeSpan.FromSeconds(5),
            TimeProvider = time,
            Name = name,
        });
        var held = new[] { await pool.RentWithinAsync(), await pool.RentWithinAsync(), await pool.RentWithinAsync() };

        var first = pool.RentAsync().AsTask();
        time.Advance(TimeSpan.FromSeconds(3));
        var second = pool.RentAsync().AsTask();
        time.Advance(TimeSpan.FromSeconds(2.5)); // first waited 5.5 s, second 2.5 s

        var timeout = await Assert.ThrowsAsync<TimeoutException>(() => first.WaitAsync(Patience));
        Assert.Contains(name, timeout.Message, StringComparison.Ordinal);
        Assert.Matches(@"\b3\b", timeout.Message.Replace(name, string.Empty, StringComparison.Ordinal));
        Assert.Equal(1, pool.Statistics.Waiters);
        Assert.False(second.IsCompleted);

        // The item returned now goes to the waiter still waiting, not to the one that timed out.
        var item = held[0].Value;
        await held[0].ReturnWithinAsync();
        var secondLease = await second.WaitAsync(Patience);
        Assert.Same(item, secondLease.Value);

        // With nobody else waiting, an item returned after a time-out goes back to idle.
        var third = pool.RentAsync().AsTask();
        time.Advance(TimeSpan.FromSeconds(6));
        await Assert.ThrowsAsync<TimeoutException>(() => third.WaitAsync(Patience));
        await held[1].ReturnWithinAsync();
        Assert.Equal(new PoolStatistics(Size: 3, Idle: 1, InUse: 2, Waiters: 0, Created: 3, Destroyed: 0), pool.Statistics);

        await held[2].ReturnWithinAsync();
        await secondLease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task TryRent_creates_nothing_and_finds_nothing_in_an_empty_pool()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 2 });

        Assert.False(pool.TryRent(out var lease));

        Assert.Throws<ObjectDisposedException>(() => lease.Value);
        Assert.Equal(default, pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task TryRent_does_not_wait_for_a_validation_that_is_still_running_and_the_item_comes_back()
    {
        var validationGate = PoolTest.NewGate();
        bool holdValidation = false;
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Validate = async (_, _) =>
            {
                if (Volatile.Read(ref holdValidation))
                {
                    await validationGate.Task;
                }

                return true;
            },
        });
        var first = await pool.RentWithinAsync();
        var item = first.Value;
        await first.ReturnWithinAsync();

        Assert.True(pool.TryRent(out var synchronous)); // a validation that completes synchronously lends the item
        Assert.Same(item, synchronous.Value);
        await synchronous.ReturnWithinAsync();

        Volatile.Write(ref holdValidation, true);
        Assert.False(pool.TryRent(out _));
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);

        Volatile.Write(ref holdValidation, false);
        var rent = pool.RentAsync().AsTask();               // waits for the item being validated, or finds it idle
        validationGate.SetResult();
        var lease = await rent.WaitAsync(Patience);
        Assert.Same(item, lease.Value);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_item_whose_validation_left_running_by_TryRent_fails_is_destroyed_and_a_throw_is_reported(bool throws)
    {
        string name = PoolTest.UniqueName();
        using var capture = new PoolDiagnosticsCapture(name);
        var destroyed = new DestroyLog();
        var validations = new PendingCalls<bool>();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { Validate = (_, _) => validations.Next().Task, Destroy = destroyed.Destroy, Name = name });
        var first = await pool.RentWithinAsync();
        var item = first.Value;
        await first.ReturnWithinAsync();
        Assert.False(pool.TryRent(out _)); // its validation is still running
        var failure = new InvalidOperationException("the validation failed");

        if (throws)
        {
            validations.Fail(failure);
        }
        else
        {
            validations.Complete(false);
        }

        await destroyed.WhenCount(1).WaitAsync(Patience);
        Assert.Same(item, Assert.Single(destroyed.Items));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
        Assert.Equal(throws ? [failure] : [], capture.Failures);
        await pool.DisposeWithinAsync();
    }

    // --- Factory failures ---------------------------------------------------------------------------------------

    [Fact]
    public async Task A_factory_failure_reaches_the_renter_and_frees_the_slot()
    {
        var failure = new InvalidOperationException("the factory failed");
        int calls = 0;
        var pool = new AsyncPool<Item>(
            _ => Interlocked.Increment(ref calls) == 1 ? ValueTask.FromException<Item>(failure) : ValueTask.FromResult(new Item()),
            new AsyncPoolOptions<Item> { MaxSize = 1 });

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => pool.RentWithinAsync());

        Assert.Same(failure, thrown);
        Assert.Equal(default, pool.Statistics);
        var lease = await pool.RentWithinAsync();
        Assert.Equal(2, calls);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_factory_failure_reaches_only_its_renter_and_the_waiter_behind_it_gets_a_new_item()
    {
        var failure = new InvalidOperationException("the first creation failed");
        var factoryGate = PoolTest.NewGate();
        int calls = 0;
        var pool = new AsyncPool<Item>(
            async _ =>
            {
                if (Interlocked.Increment(ref calls) == 1)
                {
                    await factoryGate.Task;
                    throw failure;
                }

                return new Item();
            },
            new AsyncPoolOptions<Item> { MaxSize = 1 });

        var creating = pool.RentAsync().AsTask();
        var waiting = pool.RentAsync().AsTask();
        Assert.Equal(1, pool.Statistics.Waiters);

        factoryGate.SetResult();

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => creating.WaitAsync(Patience));
        Assert.Same(failure, thrown);
        var lease = await waiting.WaitAsync(Patience);
        Assert.Equal(2, calls);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_factory_that_returns_null_fails_the_renter_and_frees_the_slot()
    {
        int calls = 0;
        var pool = new AsyncPool<Item>(
            _ => ValueTask.FromResult(Interlocked.Increment(ref calls) == 1 ? null! : new Item()),
            new AsyncPoolOptions<Item> { MaxSize = 1 });

        await Assert.ThrowsAsync<InvalidOperationException>(() => pool.RentWithinAsync());

        var lease = await pool.RentWithinAsync();
        Assert.NotNull(lease.Value);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task The_factory_receives_the_renters_token()
    {
        CancellationToken seen = default;
        var pool = new AsyncPool<Item>(token =>
        {
            seen = token;
            return ValueTask.FromResult(new Item());
        });
        using var cancellation = new CancellationTokenSource();

        var lease = await pool.RentWithinAsync(cancellation.Token);

        Assert.Equal(cancellation.Token, seen);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    // --- UseAsync -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task UseAsync_returns_the_bodys_result_and_gives_the_item_back()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        Item? used = null;

        int result = await pool.UseAsync((item, _) =>
        {
            used = item;
            Assert.Equal(1, pool.Statistics.InUse);
            return Task.FromResult(42);
        }).WaitAsync(Patience);

        Assert.Equal(42, result);
        Assert.NotNull(used);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        var lease = await pool.RentWithinAsync();
        Assert.Same(used, lease.Value);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task UseAsync_without_a_result_runs_the_body_with_the_renters_token_and_gives_the_item_back()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        using var cancellation = new CancellationTokenSource();
        CancellationToken seen = default;

        await pool.UseAsync(
            (_, token) =>
            {
                seen = token;
                return Task.CompletedTask;
            },
            cancellation.Token).WaitAsync(Patience);

        Assert.Equal(cancellation.Token, seen);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    private static async Task TakeRecordAndReturnAsync(AsyncPool<Item> pool, int index, ConcurrentQueue<int> order)
    {
        var lease = await pool.RentAsync();
        order.Enqueue(index);
        await lease.DisposeAsync();
    }
}
