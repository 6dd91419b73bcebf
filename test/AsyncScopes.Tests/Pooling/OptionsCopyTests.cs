using System.Reflection;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Pooling;

/// <summary>Every bad setting listed at once (the hosting registrations list them at start), and the copy a pool or
/// queue keeps of its options: complete (a property added later and not copied fails here), and apart from the
/// caller's instance.</summary>
public sealed class OptionsCopyTests
{
    [Fact]
    public void Pool_options_list_every_bad_setting_in_order()
    {
        var options = new AsyncPoolOptions<object>
        {
            MaxSize = 0,
            MinIdle = -1,
            AcquireTimeout = TimeSpan.FromSeconds(-2),
            DrainTimeout = TimeSpan.FromSeconds(-1),
            TimeProvider = null!,
        };

        string[] names = [.. options.FindProblems().Select(problem => problem.ParamName ?? "?")];

        Assert.Equal(["MaxSize", "MinIdle", "AcquireTimeout", "DrainTimeout", "TimeProvider"], names);
        Assert.Equal("MaxSize", Assert.Throws<ArgumentOutOfRangeException>(options.ThrowIfInvalid).ParamName);
    }

    [Fact]
    public void Queue_options_list_every_bad_setting_in_order()
    {
        var options = new WorkQueueOptions<object>
        {
            Workers = 0,
            Capacity = -1,
            MaxRetainedFailures = -1,
            DrainTimeout = Timeout.InfiniteTimeSpan,
            TimeProvider = null!,
        };

        string[] names = [.. options.FindProblems().Select(problem => problem.ParamName ?? "?")];

        Assert.Equal(["Workers", "Capacity", "MaxRetainedFailures", "DrainTimeout", "TimeProvider"], names);
        Assert.Equal("Workers", Assert.Throws<ArgumentOutOfRangeException>(options.ThrowIfInvalid).ParamName);
    }

    [Fact]
    public void Valid_options_have_no_problems()
    {
        Assert.Empty(new AsyncPoolOptions<object>().FindProblems());
        Assert.Empty(new WorkQueueOptions<object>().FindProblems());
    }

    [Fact]
    public void A_copy_of_pool_options_keeps_every_setting()
    {
        var original = new AsyncPoolOptions<object>
        {
            MaxSize = 3,
            MinIdle = 2,
            AcquireTimeout = TimeSpan.FromSeconds(1),
            IdleTimeout = TimeSpan.FromSeconds(2),
            MaxLifetime = TimeSpan.FromSeconds(3),
            Validate = (_, _) => ValueTask.FromResult(true),
            Reset = _ => ValueTask.CompletedTask,
            Destroy = _ => ValueTask.CompletedTask,
            DiscardOn = _ => false,
            DrainTimeout = TimeSpan.FromSeconds(4),
            TimeProvider = new FakeTimeProvider(),
            Name = "before",
        };

        AssertCopied(original, original.Copy());
    }

    [Fact]
    public void A_copy_of_queue_options_keeps_every_setting()
    {
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 1 });
        var original = new WorkQueueOptions<object>
        {
            Workers = 3,
            Capacity = 7,
            DrainTimeout = TimeSpan.FromSeconds(4),
            OnError = (_, _) => ValueTask.CompletedTask,
            MaxRetainedFailures = 5,
            TimeProvider = new FakeTimeProvider(),
            Name = "before",
            Limiter = limiter,
            TraceItems = true,
        };

        AssertCopied(original, original.Copy());
    }

    [Fact]
    public async Task Changing_the_options_after_the_pool_was_created_changes_nothing_in_it()
    {
        var options = new AsyncPoolOptions<object> { MaxSize = 1 };
        await using var pool = new AsyncPool<object>(_ => ValueTask.FromResult(new object()), options);
        await using var first = await pool.RentAsync();

        options.MaxSize = 3;
        var second = pool.RentAsync().AsTask();

        Assert.False(second.IsCompleted); // still one item at most
        Assert.Equal(1, pool.Statistics.Waiters);
        await first.DisposeAsync();
        await (await second.WaitAsync(TimeSpan.FromSeconds(30))).DisposeAsync();
    }

    [Fact]
    public async Task Changing_the_options_after_the_queue_was_created_changes_nothing_in_it()
    {
        var told = new List<int>();
        var options = new WorkQueueOptions<int> { Workers = 1 };
        await using var queue = new WorkQueue<int>((_, _) => throw new InvalidOperationException("fails"), options);

        options.OnError = (item, _) =>
        {
            told.Add(item);
            return ValueTask.CompletedTask;
        };
        await queue.EnqueueAsync(1);
        var result = await queue.CompleteAsync();

        Assert.Equal(1, result.FailedCount);
        Assert.Empty(told); // the queue has no OnError: it kept the options as they were
    }

    [Fact]
    public void Scope_options_without_a_span_keep_every_other_setting()
    {
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 1 });
        var original = new TaskScopeOptions
        {
            FailureMode = TaskScopeFailureMode.WaitForAll,
            MaxConcurrency = 3,
            Timeout = TimeSpan.FromSeconds(4),
            TimeoutEndsQuietly = true,
            TimeProvider = new FakeTimeProvider(),
            StragglerTimeout = TimeSpan.FromSeconds(2),
            Limiter = limiter,
            Name = "hosted",
        };

        TaskScopeOptions copy = original.WithoutSpan();

        Assert.True(copy.Untraced);
        AssertCopied(original, copy);
    }

    private static void AssertCopied<TOptions>(TOptions original, TOptions copy)
        where TOptions : class
    {
        Assert.NotSame(original, copy);
        foreach (PropertyInfo property in typeof(TOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            object? before = property.GetValue(original);
            object? after = property.GetValue(copy);
            // Each setting above differs from its default, so a property the copy forgot shows here.
            Assert.NotEqual(property.GetValue(Activator.CreateInstance<TOptions>()), before);
            Assert.Equal(before, after);
        }
    }
}
