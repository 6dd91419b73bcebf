using AsyncScopes.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Pooling;

/// <summary>
/// The pool reuses its waiters from one wait to the next. These tests check that reuse never mixes up two renters: a
/// stale rent fails instead of reading another renter's lease, cancellations and timers of a finished wait never reach
/// the next one, disposal fails every waiter, and a place freed while a renter waits becomes an item made for that
/// renter. Each runs against a pool whose renters await their waiter for the lease itself (no validation, no lifetime
/// limit) and one that validates, whose waits go on asynchronously from the item they are handed.
/// </summary>
public sealed class AsyncPoolWaiterTests
{
    private const int Rounds = 200;
    private static readonly TimeSpan Patience = PoolTest.Patience;
    private static readonly Func<Item, CancellationToken, ValueTask<bool>> AlwaysValid = (_, _) => ValueTask.FromResult(true);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stale_rent_fails_instead_of_reading_the_lease_of_the_renter_that_reuses_its_waiter(bool validate)
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Validate = validate ? AlwaysValid : null });
        var held = await pool.RentWithinAsync();
        var item = held.Value;
        using var cancellation = new CancellationTokenSource();

        ValueTask<PoolLease<Item>> first = pool.RentAsync(cancellation.Token);
        Assert.False(first.IsCompleted);
        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await first.AsTask().WaitAsync(Patience));

        var second = pool.RentAsync();
        Assert.False(second.IsCompleted);

        // Reading the first rent again, against the rules of ValueTask, leaves the second one waiting and never reads
        // its lease: it fails (a reused waiter knows the read is stale), or reads its own cancellation again (a rent
        // that validates waits in a state machine of its own).
        var staleFailure = validate ? typeof(OperationCanceledException) : typeof(InvalidOperationException);
        Assert.IsAssignableFrom(staleFailure, Record.Exception(() => first.GetAwaiter().GetResult()));
        Assert.Equal(1, pool.Statistics.Waiters);

        await held.ReturnWithinAsync();
        var lease = await second.AsTask().WaitAsync(Patience);
        Assert.Same(item, lease.Value);
        Assert.IsAssignableFrom(staleFailure, Record.Exception(() => first.GetAwaiter().GetResult()));

        await lease.ReturnWithinAsync();
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        await pool.DisposeWithinAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Renters_in_line_each_get_their_own_outcome_round_after_round(bool validate)
    {
        const int WaitersPerRound = 4;
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Validate = validate ? AlwaysValid : null });
        var held = await pool.RentWithinAsync();
        var item = held.Value;
        var random = new Random(20261201);
        int served = 0;
        int cancelled = 0;

        for (int round = 0; round < Rounds; round++)
        {
            var cancellations = new CancellationTokenSource[WaitersPerRound];
            var rents = new Task<PoolLease<Item>>[WaitersPerRound];
            for (int i = 0; i < WaitersPerRound; i++)
            {
                cancellations[i] = new CancellationTokenSource();
                rents[i] = pool.RentAsync(cancellations[i].Token).AsTask();
            }

            Assert.Equal(WaitersPerRound, pool.Statistics.Waiters);

            // Some waiters give up; at least one stays, to take the item into the next round.
            var givesUp = Enumerable.Range(0, WaitersPerRound).Select(i => i < WaitersPerRound - 1 && random.Next(2) == 0).ToArray();
            for (int i = 0; i < WaitersPerRound; i++)
            {
                if (givesUp[i])
                {
                    await cancellations[i].CancelAsync();
                }
            }

            // The item passes along the waiters that stayed, in the order they came; each gets it once.
            for (int i = 0; i < WaitersPerRound; i++)
            {
                if (givesUp[i])
                {
                    await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rents[i].WaitAsync(Patience));
                    cancelled++;
                    continue;
                }

                Assert.False(rents[i].IsCompleted, $"round {round}: waiter {i} was served before the item came back");
                await held.ReturnWithinAsync();
                held = await rents[i].WaitAsync(Patience);
                Assert.Same(item, held.Value);
                served++;
            }

            Assert.True(
                pool.Statistics == new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0),
                $"round {round}: {pool.Statistics}");
            foreach (var cancellation in cancellations)
            {
                await cancellation.CancelAsync(); // a finished wait's token does nothing
                cancellation.Dispose();
            }
        }

        Assert.True(served > Rounds && cancelled > 0, $"served {served}, cancelled {cancelled}");
        Assert.Equal(1, pool.Statistics.InUse);
        await held.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
        Assert.Equal(1, pool.Statistics.Destroyed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_timer_of_a_finished_wait_never_times_out_a_later_renter(bool validate)
    {
        var time = new FakeTimeProvider();
        var acquireTimeout = TimeSpan.FromSeconds(5);
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            AcquireTimeout = acquireTimeout,
            TimeProvider = time,
            Validate = validate ? AlwaysValid : null,
        });
        var held = await pool.RentWithinAsync();
        var item = held.Value;

        for (int round = 0; round < Rounds; round++)
        {
            // A waiter that times out, and one that arrives after it and waits almost as long.
            var timingOut = pool.RentAsync().AsTask();
            time.Advance(acquireTimeout);
            await Assert.ThrowsAsync<TimeoutException>(() => timingOut.WaitAsync(Patience));

            var served = pool.RentAsync().AsTask();
            time.Advance(acquireTimeout - TimeSpan.FromSeconds(1));
            Assert.False(served.IsCompleted, $"round {round}: a waiter was failed before its own timeout");

            // Served before its timer fires; the timer, once due, does nothing to the next waiter.
            await held.ReturnWithinAsync();
            held = await served.WaitAsync(Patience);
            Assert.Same(item, held.Value);
            var next = pool.RentAsync().AsTask();
            time.Advance(TimeSpan.FromSeconds(2));
            Assert.False(next.IsCompleted, $"round {round}: the timer of a served waiter failed the next one");
            await held.ReturnWithinAsync();
            held = await next.WaitAsync(Patience);
            Assert.True(
                pool.Statistics == new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0),
                $"round {round}: {pool.Statistics}");
        }

        await held.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Disposal_fails_every_kind_of_waiter_and_their_tokens_and_timers_do_nothing_afterwards(bool validate)
    {
        var time = new FakeTimeProvider();
        var destroyed = new DestroyLog();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            AcquireTimeout = TimeSpan.FromSeconds(5),
            TimeProvider = time,
            Validate = validate ? AlwaysValid : null,
            Destroy = destroyed.Destroy,
        });
        var held = await pool.RentWithinAsync();
        var item = held.Value;
        using var cancellation = new CancellationTokenSource();
        var rents = new[]
        {
            pool.RentAsync().AsTask(),
            pool.RentAsync(cancellation.Token).AsTask(),
            pool.RentAsync().AsTask(),
            pool.RentAsync(cancellation.Token).AsTask(),
        };
        Assert.Equal(rents.Length, pool.Statistics.Waiters);

        var disposal = pool.DisposeAsync().AsTask();

        foreach (var rent in rents)
        {
            await Assert.ThrowsAsync<ObjectDisposedException>(() => rent.WaitAsync(Patience));
        }

        Assert.Equal(0, pool.Statistics.Waiters);
        await cancellation.CancelAsync();
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(disposal.IsCompleted);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pool.RentAsync());

        await held.ReturnWithinAsync();
        await disposal.WaitAsync(Patience);
        Assert.Same(item, Assert.Single(destroyed.Items));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_place_freed_while_a_renter_waits_becomes_an_item_made_in_that_renters_context_with_its_token(bool validate)
    {
        var renterValue = new AsyncLocal<string?>();
        var seen = new List<(string? Value, CancellationToken Token)>();
        var pool = new AsyncPool<Item>(
            token =>
            {
                lock (seen)
                {
                    seen.Add((renterValue.Value, token));
                }

                return ValueTask.FromResult(new Item());
            },
            new AsyncPoolOptions<Item> { MaxSize = 1, Validate = validate ? AlwaysValid : null });
        var held = await pool.RentWithinAsync();
        var first = held.Value;
        using var cancellation = new CancellationTokenSource();

        var waiting = RentAsRenterAsync();
        Assert.Equal(1, pool.Statistics.Waiters);
        Assert.Null(renterValue.Value);

        held.Discard();
        await held.ReturnWithinAsync();
        var lease = await waiting.WaitAsync(Patience);

        Assert.NotSame(first, lease.Value);
        Assert.Equal(2, seen.Count);
        Assert.Equal(("renter", cancellation.Token), seen[1]);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();

        // The value is set in this method's own context, which the rent captures; the test's context never sees it.
        async Task<PoolLease<Item>> RentAsRenterAsync()
        {
            renterValue.Value = "renter";
            return await pool.RentAsync(cancellation.Token);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_place_freed_while_a_renter_that_suppressed_the_flow_waits_becomes_an_item_made_for_it(bool validate)
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Validate = validate ? AlwaysValid : null });
        var held = await pool.RentWithinAsync();
        Task<PoolLease<Item>> waiting;
        using (ExecutionContext.SuppressFlow())
        {
            waiting = pool.RentAsync().AsTask(); // no execution context to make its item in
        }

        held.Discard();
        await held.ReturnWithinAsync();
        var lease = await waiting.WaitAsync(Patience);

        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_AcquireTimeout_timer_of_a_wait_is_released_when_the_renter_is_handed_an_item(bool validate)
    {
        var time = new TrackingTimeProvider();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, AcquireTimeout = TimeSpan.FromMinutes(1), TimeProvider = time, Validate = validate ? AlwaysValid : null });
        var held = await pool.RentWithinAsync();
        var waiting = pool.RentAsync().AsTask();
        Assert.Equal(1, time.Undisposed);

        await held.ReturnWithinAsync();
        var lease = await waiting.WaitAsync(Patience);

        Assert.Equal(0, time.Undisposed);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task Reading_a_rent_that_still_waits_throws_and_leaves_the_wait_as_it_was()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1 });
        var held = await pool.RentWithinAsync();
        var item = held.Value;
        var waiting = pool.RentAsync();

        // Against the rules of ValueTask, but a blocking read must not break the wait.
        Assert.Throws<InvalidOperationException>(() => waiting.Result);

        Assert.Equal(1, pool.Statistics.Waiters);
        await held.ReturnWithinAsync();
        var lease = await waiting.AsTask().WaitAsync(Patience);
        Assert.Same(item, lease.Value);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_failed_creation_for_a_waiter_reaches_that_waiter_and_its_place_goes_to_the_next(bool validate)
    {
        var failure = new InvalidOperationException("the creation for the first waiter failed");
        int calls = 0;
        var pool = new AsyncPool<Item>(
            _ => Interlocked.Increment(ref calls) == 2 ? ValueTask.FromException<Item>(failure) : ValueTask.FromResult(new Item()),
            new AsyncPoolOptions<Item> { MaxSize = 1, Validate = validate ? AlwaysValid : null });
        var held = await pool.RentWithinAsync();
        var first = pool.RentAsync().AsTask();
        var second = pool.RentAsync().AsTask();

        held.Discard();
        await held.ReturnWithinAsync();

        Assert.Same(failure, await Assert.ThrowsAsync<InvalidOperationException>(() => first.WaitAsync(Patience)));
        var lease = await second.WaitAsync(Patience);
        Assert.Equal(3, calls);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelling_a_waiter_whose_item_is_being_made_cancels_the_factory_and_frees_the_place(bool validate)
    {
        var creating = PoolTest.NewGate();
        var never = PoolTest.NewGate();
        int calls = 0;
        var pool = new AsyncPool<Item>(
            async token =>
            {
                if (Interlocked.Increment(ref calls) == 2)
                {
                    creating.SetResult();
                    await never.Task.WaitAsync(token); // ends only when the renter's token is cancelled
                }

                return new Item();
            },
            new AsyncPoolOptions<Item> { MaxSize = 1, Validate = validate ? AlwaysValid : null });
        var held = await pool.RentWithinAsync();
        using var cancellation = new CancellationTokenSource();
        var waiting = pool.RentAsync(cancellation.Token).AsTask();

        held.Discard();
        await held.ReturnWithinAsync();
        await creating.Task.WaitAsync(Patience);
        Assert.Equal(0, pool.Statistics.Waiters);
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Patience));
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
        var lease = await pool.RentWithinAsync();
        Assert.Equal(3, calls);
        await lease.ReturnWithinAsync();
        await pool.DisposeWithinAsync();
    }
}

/// <summary>Runs alone, with leak tracking off: see <see cref="SerialPoolTests"/>.</summary>
[Collection(SerialPoolTests.Name)]
public sealed class AsyncPoolWaiterAllocationTests
{
    private const int Iterations = 1000;

    // The rent, the hand-over and the read of the lease all on this thread: the wait is complete before anyone awaits
    // it, so no continuation runs elsewhere, and this thread's allocations are the wait's.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_rent_that_waits_allocates_nothing_once_the_pool_reuses_its_waiters(bool withToken)
    {
        bool tracking = ScopeDiagnostics.LeakTracking;
        ScopeDiagnostics.LeakTracking = false;
        try
        {
            var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxSize = 1, Name = PoolTest.UniqueName() });
            using var cancellation = new CancellationTokenSource();
            var token = withToken ? cancellation.Token : CancellationToken.None;
            var held = await pool.RentWithinAsync();

            for (int round = 0; round < 3; round++)
            {
                (_, held) = await WaitAndHandOverAsync(pool, held, Iterations, token);
            }

            (long allocated, held) = await WaitAndHandOverAsync(pool, held, Iterations, token);

            Assert.Equal(0, allocated);
            Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
            await held.ReturnWithinAsync();
            await pool.DisposeWithinAsync();
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = tracking;
        }
    }

    private static async Task<(long Allocated, PoolLease<Item> Held)> WaitAndHandOverAsync(AsyncPool<Item> pool, PoolLease<Item> held, int count, CancellationToken token)
    {
        long allocated = WaitAndHandOver(pool, ref held, count, out int handedOver, out var pending, token);
        if (pending is not null)
        {
            await pending.WaitAsync(PoolTest.Patience, CancellationToken.None);
        }

        Assert.Equal(count, handedOver);
        return (allocated, held);
    }

    // Not async, so that nothing but the pool allocates between the two readings. Stops at the first rent that did not
    // wait, or return that did not hand its item over at once, and hands it back to be awaited (already a failure).
    private static long WaitAndHandOver(AsyncPool<Item> pool, ref PoolLease<Item> held, int count, out int handedOver, out Task? pending, CancellationToken token)
    {
        handedOver = 0;
        pending = null;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < count; i++)
        {
            ValueTask<PoolLease<Item>> rent = pool.RentAsync(token);
            if (rent.IsCompleted)
            {
                pending = rent.AsTask(); // the only item is held: the rent must wait
                break;
            }

            ValueTask returned = held.DisposeAsync();
            if (!returned.IsCompletedSuccessfully || !rent.IsCompletedSuccessfully)
            {
                pending = Task.WhenAll(returned.AsTask(), rent.AsTask());
                break;
            }

            held = rent.Result;
            handedOver++;
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
