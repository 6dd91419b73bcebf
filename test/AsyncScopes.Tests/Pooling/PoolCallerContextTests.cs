using AsyncScopes.Tests.Support;

namespace AsyncScopes.Tests.Pooling;

/// <summary>
/// The pool never resumes on the caller's <see cref="SynchronizationContext"/>: each await of a factory, a validation,
/// a reset, a destruction or a body that completes later resumes where it completed (see <see cref="CallerContext"/>).
/// </summary>
public sealed class PoolCallerContextTests
{
    private readonly CallerContext _caller = new();
    private readonly PendingCalls<Item> _created = new();
    private readonly PendingCalls<bool> _validated = new();
    private readonly PendingCalls<bool> _reset = new();
    private readonly PendingCalls<bool> _destroyed = new();

    [Fact]
    public async Task UseAsync_resumes_after_the_factory_the_body_and_the_reset_without_the_callers_context()
    {
        var pool = new AsyncPool<Item>(Create, new AsyncPoolOptions<Item> { Reset = Reset, Name = PoolTest.UniqueName() });
        var body = new TaskCompletionSource();
        Task use = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a caller on a UI thread
                use = pool.UseAsync((_, _) => _caller.Pending(body.Task));
            },
            () => _created.Complete(new Item()),
            body.SetResult,
            () => _reset.Complete(true));

        await use;
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 1, InUse: 0, Waiters: 0, Created: 1, Destroyed: 0), pool.Statistics);
        Assert.Equal(0, _caller.Posts);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task UseAsync_with_a_result_resumes_after_the_factory_the_body_and_the_reset_without_the_callers_context()
    {
        var pool = new AsyncPool<Item>(Create, new AsyncPoolOptions<Item> { Reset = Reset, Name = PoolTest.UniqueName() });
        var body = new TaskCompletionSource<int>();
        Task<int> use = Task.FromResult(0);

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a caller on a UI thread
                use = pool.UseAsync((_, _) => _caller.Pending(body.Task));
            },
            () => _created.Complete(new Item()),
            () => body.SetResult(42),
            () => _reset.Complete(true));

        Assert.Equal(42, await use);
        Assert.Equal(0, _caller.Posts);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_rent_resumes_after_a_failed_validation_the_destruction_and_the_factory_without_the_callers_context()
    {
        var pool = new AsyncPool<Item>(Create, new AsyncPoolOptions<Item> { Validate = Validate, Destroy = Destroy, Name = PoolTest.UniqueName() });
        var first = new Item();
        var second = new Item();
        await CallerContext.RunStepsAsync(
            () => _ = ReturnWhenRentedAsync(pool),
            () => _created.Complete(first)); // the first item is idle now, and not yet validated
        Task<PoolLease<Item>> rent = Task.FromResult(default(PoolLease<Item>));

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a renter on a UI thread: the validation's await is its first
                rent = pool.RentAsync().AsTask();
            },
            () => _validated.Complete(false),
            () => _destroyed.Complete(true),
            () => _created.Complete(second));

        var lease = await rent;
        Assert.Same(second, lease.Value);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        Assert.Equal(0, _caller.Posts);
        await lease.DisposeAsync();
        _destroyed.Complete(true); // the disposal's destruction of the second item
        await pool.DisposeWithinAsync();
    }

    // A ConfigureAwait(false) continuation never runs inline on a thread with a context like this one: only what runs
    // synchronously in the caller's call can await with the caller's context current. Here the validation fails at
    // once, and the destruction, or the creation after it, is the first thing the rent awaits.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_rent_whose_validation_fails_at_once_awaits_the_destruction_or_the_creation_without_the_callers_context(bool destroysAtOnce)
    {
        var pool = new AsyncPool<Item>(Create, new AsyncPoolOptions<Item> { Validate = Validate, Destroy = Destroy, Name = PoolTest.UniqueName() });
        _created.Complete(new Item());
        await ReturnWhenRentedAsync(pool); // the first item is idle now, and not yet validated
        _validated.Complete(false);
        if (destroysAtOnce)
        {
            _destroyed.Complete(true);
        }

        var second = new Item();
        Task<PoolLease<Item>> rent = Task.FromResult(default(PoolLease<Item>));

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent();
                rent = pool.RentAsync().AsTask();
            },
            () =>
            {
                if (!destroysAtOnce)
                {
                    _destroyed.Complete(true);
                }
            },
            () => _created.Complete(second));

        var lease = await rent.WaitAsync(PoolTest.Patience);
        Assert.Same(second, lease.Value);
        Assert.Equal(0, _caller.Posts);
        await lease.DisposeAsync();
        _destroyed.Complete(true); // the disposal's destruction of the second item
        await pool.DisposeWithinAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task UseAsync_whose_body_completes_at_once_awaits_the_reset_without_the_callers_context(bool withResult)
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { Reset = Reset, Name = PoolTest.UniqueName() });
        Task use = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent();
                use = withResult ? pool.UseAsync((_, _) => Task.FromResult(1)) : pool.UseAsync((_, _) => Task.CompletedTask);
            },
            () => _reset.Complete(true));

        await use.WaitAsync(PoolTest.Patience);
        Assert.Equal(0, _caller.Posts);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task An_item_whose_reset_failed_at_once_is_destroyed_without_the_callers_context()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
            {
                Reset = static _ => ValueTask.FromException(new InvalidOperationException("the reset failed")),
                Destroy = Destroy,
                Name = PoolTest.UniqueName(),
            });
        var lease = await pool.RentWithinAsync();
        Task returning = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent();
                returning = lease.DisposeAsync().AsTask();
            },
            () => _destroyed.Complete(true));

        await returning.WaitAsync(PoolTest.Patience);
        Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
        Assert.Equal(0, _caller.Posts);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_validation_left_running_by_TryRent_finishes_without_the_callers_context()
    {
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { Validate = Validate, Destroy = Destroy, Name = PoolTest.UniqueName() });
        var first = await pool.RentWithinAsync();
        await first.ReturnWithinAsync();

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent();
                Assert.False(pool.TryRent(out _));
            },
            () => _validated.Complete(false),
            () => _destroyed.Complete(true));

        await PoolTest.UntilAsync(() => pool.Statistics.Destroyed == 1, "the invalid item's destruction");
        Assert.Equal(0, _caller.Posts);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_rent_that_finds_an_expired_idle_item_awaits_its_destruction_without_the_callers_context()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item> { MaxLifetime = TimeSpan.FromSeconds(10), TimeProvider = time, Destroy = Destroy, Name = PoolTest.UniqueName() });
        var first = await pool.RentWithinAsync();
        await first.ReturnWithinAsync();
        time.AdjustTime(time.GetUtcNow() + TimeSpan.FromSeconds(11)); // expired, and no sweep ran
        Task<PoolLease<Item>> rent = Task.FromResult(default(PoolLease<Item>));

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent();
                rent = pool.RentAsync().AsTask();
            },
            () => _destroyed.Complete(true));

        var lease = await rent.WaitAsync(PoolTest.Patience);
        Assert.Equal(new PoolStatistics(Size: 1, Idle: 0, InUse: 1, Waiters: 0, Created: 2, Destroyed: 1), pool.Statistics);
        Assert.Equal(0, _caller.Posts);
        await lease.DisposeAsync();
        _destroyed.Complete(true); // the disposal's destruction of the new item
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_pool_made_on_the_callers_thread_makes_its_MinIdle_items_without_the_callers_context()
    {
        AsyncPool<Item>? pool = null;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent();
                pool = new AsyncPool<Item>(Create, new AsyncPoolOptions<Item> { MinIdle = 1, Name = PoolTest.UniqueName() });
            },
            () => _created.Complete(new Item()));

        await PoolTest.UntilAsync(() => pool!.Statistics.Idle == 1, "the MinIdle item going idle");
        Assert.Equal(0, _caller.Posts);
        await pool!.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_discarded_item_is_disposed_without_the_callers_context()
    {
        var pool = new AsyncPool<PendingDisposable>(_ => ValueTask.FromResult(new PendingDisposable(_caller)), new AsyncPoolOptions<PendingDisposable> { Name = PoolTest.UniqueName() });
        var lease = await pool.RentWithinAsync();
        var item = lease.Value;
        Task returning = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                lease.Discard();
                returning = lease.DisposeAsync().AsTask();
            },
            () => item.Disposal.SetResult(true));

        await returning;
        Assert.True(item.Disposal.Consumed);
        Assert.Equal(0, _caller.Posts);
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task A_renter_that_waited_for_a_returned_item_resumes_without_its_context()
    {
        // With Validate set, a renter that must wait awaits its waiter in the pool's own state machine.
        var pool = PoolTest.NewPool(new AsyncPoolOptions<Item>
        {
            MaxSize = 1,
            Validate = static (_, _) => ValueTask.FromResult(true),
            Name = PoolTest.UniqueName(),
        });
        var held = await pool.RentWithinAsync();
        Task<PoolLease<Item>> rent = Task.FromResult(default(PoolLease<Item>));

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a renter on a UI thread
                rent = pool.RentAsync().AsTask();
            },
            () => Assert.True(held.DisposeAsync().AsTask().IsCompletedSuccessfully));

        var lease = await rent.WaitAsync(PoolTest.Patience);
        Assert.Equal(0, _caller.Posts);
        await lease.DisposeAsync();
        await pool.DisposeWithinAsync();
    }

    [Fact]
    public async Task An_item_made_for_a_waiting_renter_resumes_after_the_factory_without_the_callers_context()
    {
        var pool = new AsyncPool<Item>(Create, new AsyncPoolOptions<Item> { MaxSize = 1, Name = PoolTest.UniqueName() });
        Task<PoolLease<Item>> first = Task.FromResult(default(PoolLease<Item>));
        Task<PoolLease<Item>> second = Task.FromResult(default(PoolLease<Item>));
        await CallerContext.RunStepsAsync(
            () => first = pool.RentAsync().AsTask(),
            () => _created.Complete(new Item()),
            () => second = pool.RentAsync().AsTask()); // waits: the only place is taken
        var held = await first;

        // The discarded item's place goes to the waiting renter: its item is made on the thread pool.
        held.Discard();
        await held.DisposeAsync();
        await _created.WhenCalled(2);
        await CallerContext.RunStepsAsync(() => _created.Complete(new Item()));

        var lease = await second.WaitAsync(PoolTest.Patience);
        Assert.Equal(0, _caller.Posts);
        await lease.DisposeAsync();
        await pool.DisposeWithinAsync();
    }

    private static async Task ReturnWhenRentedAsync(AsyncPool<Item> pool)
    {
        var lease = await pool.RentAsync().ConfigureAwait(false);
        await lease.DisposeAsync().ConfigureAwait(false);
    }

    // The callbacks: each hands back work still pending, with the caller's context current.
    private ValueTask<Item> Create(CancellationToken cancellationToken) => Pending(_created).Task;

    private ValueTask<bool> Validate(Item item, CancellationToken cancellationToken) => Pending(_validated).Task;

    private ValueTask Reset(Item item) => Pending(_reset).Untyped;

    private ValueTask Destroy(Item item) => Pending(_destroyed).Untyped;

    private PendingValueTask<T> Pending<T>(PendingCalls<T> calls)
    {
        _caller.MakeCurrent();
        return calls.Next();
    }
}
