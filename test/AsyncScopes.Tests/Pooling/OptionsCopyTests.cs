using System.Reflection;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Pooling;

/// <summary>What the hosting registrations rely on: every bad setting listed at once, and a named copy that keeps
/// every other setting (a property added later and not copied fails here).</summary>
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
    public void A_named_copy_of_pool_options_keeps_every_other_setting()
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

        AssertCopied(original, original.WithName("after"));
    }

    [Fact]
    public void A_named_copy_of_queue_options_keeps_every_other_setting()
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
        };

        AssertCopied(original, original.WithName("after"));
    }

    private static void AssertCopied<TOptions>(TOptions original, TOptions copy)
        where TOptions : class
    {
        Assert.NotSame(original, copy);
        foreach (PropertyInfo property in typeof(TOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            object? before = property.GetValue(original);
            object? after = property.GetValue(copy);
            if (property.Name == "Name")
            {
                Assert.Equal("after", after);
                continue;
            }

            // Each setting above differs from its default, so a property the copy forgot shows here.
            Assert.NotEqual(property.GetValue(Activator.CreateInstance<TOptions>()), before);
            Assert.Equal(before, after);
        }
    }
}
