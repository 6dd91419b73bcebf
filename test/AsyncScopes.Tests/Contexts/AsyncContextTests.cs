namespace AsyncScopes.Tests.Contexts;

/// <summary>The managers built by AsyncContext.Create, Of and Value.</summary>
public sealed class AsyncContextTests
{
    [Fact]
    public async Task Create_hands_the_entered_value_and_the_outcome_to_exit()
    {
        var seen = new List<(string Value, Exception? Error)>();
        var manager = AsyncContext.Create(
            _ => new ValueTask<string>("connection"),
            (value, error) =>
            {
                seen.Add((value, error));
                return new ValueTask<bool>(error is FormatException);
            });
        var error = new FormatException("rolled back");

        await manager.WithAsync((_, _) => Task.CompletedTask);
        await manager.WithAsync((_, _) => Task.FromException(error));

        Assert.Equal([("connection", null), ("connection", (Exception?)error)], seen);
    }

    [Fact]
    public async Task Create_with_a_release_never_suppresses()
    {
        var released = new List<int>();
        var manager = AsyncContext.Create(
            _ => new ValueTask<int>(5),
            value =>
            {
                released.Add(value);
                return ValueTask.CompletedTask;
            });
        var error = new FormatException("body");

        var thrown = await Assert.ThrowsAsync<FormatException>(() => manager.WithAsync((_, _) => Task.FromException(error)));

        Assert.Same(error, thrown);
        Assert.Equal([5], released);
    }

    [Fact]
    public async Task Create_passes_the_token_to_enter()
    {
        using var cts = new CancellationTokenSource();
        CancellationToken enterToken = default;
        var manager = AsyncContext.Create(
            ct =>
            {
                enterToken = ct;
                return new ValueTask<int>(1);
            },
            _ => ValueTask.CompletedTask);

        await manager.WithAsync((_, _) => Task.CompletedTask, cts.Token);

        Assert.Equal(cts.Token, enterToken);
    }

    [Fact]
    public async Task A_created_manager_cannot_be_entered_twice_at_once()
    {
        var manager = AsyncContext.Create(_ => new ValueTask<int>(1), _ => ValueTask.CompletedTask);

        await manager.EnterAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => manager.EnterAsync().AsTask());
        await manager.ExitAsync(null);
        int again = await manager.EnterAsync();

        Assert.Equal(1, again);
    }

    [Fact]
    public async Task Exiting_a_created_manager_that_is_not_entered_throws()
    {
        var manager = AsyncContext.Create(_ => new ValueTask<int>(1), _ => ValueTask.CompletedTask);

        await Assert.ThrowsAsync<InvalidOperationException>(() => manager.ExitAsync(null).AsTask());
        await manager.EnterAsync();
        await manager.ExitAsync(null);
        await Assert.ThrowsAsync<InvalidOperationException>(() => manager.ExitAsync(null).AsTask());
    }

    [Fact]
    public async Task A_failed_enter_leaves_the_manager_usable()
    {
        int attempts = 0;
        var manager = AsyncContext.Create(
            _ => ++attempts == 1 ? throw new TimeoutException("first attempt") : new ValueTask<int>(attempts),
            _ => ValueTask.CompletedTask);

        await Assert.ThrowsAsync<TimeoutException>(() => manager.EnterAsync().AsTask());
        int value = await manager.EnterAsync();

        Assert.Equal(2, value);
    }

    [Fact]
    public async Task A_throwing_exit_still_leaves_the_manager_reusable()
    {
        int exits = 0;
        var manager = AsyncContext.Create(
            _ => new ValueTask<int>(1),
            _ => ++exits == 1 ? throw new InvalidOperationException("first exit") : ValueTask.CompletedTask);

        await Assert.ThrowsAsync<InvalidOperationException>(() => manager.WithAsync((_, _) => Task.CompletedTask));
        await manager.WithAsync((_, _) => Task.CompletedTask);

        Assert.Equal(2, exits);
    }

    [Fact]
    public async Task Of_disposes_the_resource_on_every_outcome_and_never_suppresses()
    {
        var resources = new List<TrackedResource>();
        var manager = AsyncContext.Of(_ =>
        {
            var resource = new TrackedResource();
            resources.Add(resource);
            return new ValueTask<TrackedResource>(resource);
        });
        var error = new FormatException("body");

        await manager.WithAsync((_, _) => Task.CompletedTask);
        var thrown = await Assert.ThrowsAsync<FormatException>(() => manager.WithAsync((_, _) => Task.FromException(error)));

        Assert.Same(error, thrown);
        Assert.Equal(2, resources.Count);
        Assert.All(resources, r => Assert.Equal(1, r.Disposals));
    }

    [Fact]
    public async Task Of_disposes_nothing_when_open_fails()
    {
        var error = new TimeoutException("open");
        var manager = AsyncContext.Of<TrackedResource>(_ => throw error);
        bool bodyRan = false;

        var thrown = await Assert.ThrowsAsync<TimeoutException>(() => manager.WithAsync((_, _) =>
        {
            bodyRan = true;
            return Task.CompletedTask;
        }));

        Assert.Same(error, thrown);
        Assert.False(bodyRan);
    }

    [Fact]
    public async Task Value_enters_to_its_value_any_number_of_times_and_never_suppresses()
    {
        var manager = AsyncContext.Value("fixed");
        var error = new FormatException("body");

        string first = await manager.EnterAsync();
        string second = await manager.EnterAsync();
        bool suppressed = await manager.ExitAsync(error);
        var thrown = await Assert.ThrowsAsync<FormatException>(() => manager.WithAsync((_, _) => Task.FromException(error)));

        Assert.Equal("fixed", first);
        Assert.Equal("fixed", second);
        Assert.False(suppressed);
        Assert.Same(error, thrown);
    }

    [Fact]
    public void Null_delegates_throw_ArgumentNullException()
    {
        Assert.Throws<ArgumentNullException>(() => AsyncContext.Create<int>(null!, (_, _) => new ValueTask<bool>(false)));
        Assert.Throws<ArgumentNullException>(() => AsyncContext.Create(_ => new ValueTask<int>(1), (Func<int, Exception?, ValueTask<bool>>)null!));
        Assert.Throws<ArgumentNullException>(() => AsyncContext.Create(_ => new ValueTask<int>(1), (Func<int, ValueTask>)null!));
        Assert.Throws<ArgumentNullException>(() => AsyncContext.Of<TrackedResource>(null!));
    }
}

/// <summary>An async-disposable resource that counts its disposals.</summary>
internal sealed class TrackedResource : IAsyncDisposable, IDisposable
{
    private int _disposals;

    public int Disposals => Volatile.Read(ref _disposals);

    public ValueTask DisposeAsync()
    {
        Interlocked.Increment(ref _disposals);
        return ValueTask.CompletedTask;
    }

    public void Dispose() => Interlocked.Increment(ref _disposals);
}
