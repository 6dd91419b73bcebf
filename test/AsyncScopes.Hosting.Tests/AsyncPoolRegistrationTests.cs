using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

using static AsyncScopes.Hosting.Tests.TestHost;

namespace AsyncScopes.Hosting.Tests;

/// <summary><see cref="AsyncPoolServiceCollectionExtensions.AddAsyncPool"/> and its health check in a real host.</summary>
public sealed class AsyncPoolRegistrationTests
{
    [Fact]
    public async Task The_pool_is_created_when_first_resolved_with_the_container_for_its_factory()
    {
        var created = new ConcurrentQueue<Connection>();
        var builder = NewBuilder();
        builder.Services.AddSingleton(new Server("db.local"));
        builder.Services.AddAsyncPool("db", (services, _) =>
        {
            var connection = new Connection(services.GetRequiredService<Server>().Address);
            created.Enqueue(connection);
            return ValueTask.FromResult(connection);
        });
        using var host = builder.Build();
        await host.StartAsync();
        Assert.Empty(created); // started, nothing created: the pool is lazy

        var pool = host.Services.GetRequiredKeyedService<AsyncPool<Connection>>("db");
        await using (var lease = await pool.RentAsync())
        {
            Assert.Equal("db.local", lease.Value.Address);
        }

        Assert.Same(pool, host.Services.GetRequiredKeyedService<AsyncPool<Connection>>("db"));
        Assert.Single(created);
        await host.StopAsync();
    }

    [Fact]
    public async Task Configuration_and_code_both_set_the_options_and_the_name_defaults_to_the_key()
    {
        var reset = new ConcurrentQueue<Connection>();
        var builder = NewBuilder(new() { ["Pools:db:MaxSize"] = "1", ["Pools:db:AcquireTimeout"] = "00:00:07" });
        builder.Services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("a")))
            .Configure(options =>
            {
                options.MaxSize = 4; // a default: the configuration below overrides it
                options.IdleTimeout = TimeSpan.FromMinutes(3);
                options.Reset = connection =>
                {
                    reset.Enqueue(connection);
                    return ValueTask.CompletedTask;
                };
            })
            .BindConfiguration("Pools:db");
        using var host = builder.Build();
        await host.StartAsync();

        var options = host.Services.GetRequiredService<IOptionsMonitor<AsyncPoolOptions<Connection>>>().Get("db");
        Assert.Equal(1, options.MaxSize); // configuration
        Assert.Equal(TimeSpan.FromSeconds(7), options.AcquireTimeout); // configuration
        Assert.Equal(TimeSpan.FromMinutes(3), options.IdleTimeout); // code, not in the section
        Assert.Equal("db", options.Name);

        var pool = host.Services.GetRequiredKeyedService<AsyncPool<Connection>>("db");
        var first = await pool.RentAsync();
        var second = pool.RentAsync().AsTask(); // MaxSize 1 from configuration: it waits
        Assert.Equal(1, pool.Statistics.Waiters);
        await first.DisposeAsync();
        await using (await second.WaitAsync(Patience))
        {
            Assert.Equal(1, pool.Statistics.Size);
        }

        Assert.NotEmpty(reset); // the code's Reset ran on the return
        await host.StopAsync();
    }

    [Fact]
    public async Task Every_bad_setting_is_listed_when_the_host_starts_and_no_item_is_created()
    {
        int created = 0;
        var builder = NewBuilder(new()
        {
            ["Pools:db:MaxSize"] = "0",
            ["Pools:db:MinIdle"] = "-1",
            ["Pools:db:AcquireTimeout"] = "-00:00:02",
        });
        builder.Services.AddAsyncPool("db", (_, _) =>
        {
            Interlocked.Increment(ref created);
            return ValueTask.FromResult(new Connection("a"));
        }).BindConfiguration("Pools:db");
        using var host = builder.Build();

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal("db", thrown.OptionsName);
        Assert.Equal(
            [
                "'db': MaxSize must be at least 1 (it is 0).",
                "'db': MinIdle must be between 0 and MaxSize (it is -1).",
                "'db': AcquireTimeout must be positive, at most about 49.7 days, or Timeout.InfiniteTimeSpan (it is -00:00:02).",
            ],
            thrown.Failures);
        Assert.Equal(0, created);
    }

    [Fact]
    public async Task The_container_disposes_the_pool_asynchronously_which_destroys_its_items()
    {
        var builder = NewBuilder();
        builder.Services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("a")));
        var host = builder.Build();
        await host.StartAsync();
        var pool = host.Services.GetRequiredKeyedService<AsyncPool<Connection>>("db");
        Connection item;
        await using (var lease = await pool.RentAsync())
        {
            item = lease.Value;
        }

        await host.StopAsync();
        Assert.False(item.Disposed);
        await ((IAsyncDisposable)host).DisposeAsync();

        Assert.True(item.Disposed);
        Assert.Equal(1, pool.Statistics.Destroyed);
    }

    [Fact]
    public void A_name_is_required_and_taken_once_per_item_type()
    {
        var services = new ServiceCollection();
        services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("a")));
        services.AddAsyncPool("db", (_, _) => ValueTask.FromResult("another item type"));

        var taken = Assert.Throws<InvalidOperationException>(
            () => services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("b"))));
        Assert.Equal("AsyncPool<Connection> 'db' is already registered.", taken.Message);
        Assert.Throws<ArgumentException>(() => services.AddAsyncPool(" ", (_, _) => ValueTask.FromResult(new Connection("c"))));
        Assert.Throws<ArgumentNullException>(() => services.AddAsyncPool<Connection>("other", null!));
    }

    [Fact]
    public async Task The_health_check_reports_an_exhausted_pool_and_never_creates_one()
    {
        var builder = NewBuilder();
        builder.Services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("a"))).Configure(options => options.MaxSize = 1);
        builder.Services.AddHealthChecks().AddAsyncPoolCheck<Connection>("db");
        using var host = builder.Build();
        await host.StartAsync();
        var health = host.Services.GetRequiredService<HealthCheckService>();

        var beforeUse = (await health.CheckHealthAsync()).Entries["pool:db"];
        Assert.Equal(HealthStatus.Healthy, beforeUse.Status);
        Assert.Equal("Not created yet.", beforeUse.Description);

        var pool = host.Services.GetRequiredKeyedService<AsyncPool<Connection>>("db");
        var lease = await pool.RentAsync();
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status); // all leased, nobody waits

        var waiting = pool.RentAsync().AsTask();
        var exhausted = (await health.CheckHealthAsync()).Entries["pool:db"];
        Assert.Equal(HealthStatus.Degraded, exhausted.Status);
        Assert.Equal("Exhausted: 1 renters wait; 1 of 1 items are leased.", exhausted.Description);
        Assert.Equal(1, exhausted.Data["waiters"]);

        await lease.DisposeAsync();
        await (await waiting.WaitAsync(Patience)).DisposeAsync();
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_pool_whose_only_slot_is_being_created_is_exhausted_for_the_next_renter()
    {
        var creating = NewGate();
        var create = NewGate();
        var builder = NewBuilder();
        builder.Services.AddAsyncPool("db", async (_, _) =>
        {
            creating.TrySetResult();
            await create.Task; // a database that does not answer
            return new Connection("a");
        }).Configure(options => options.MaxSize = 1);
        builder.Services.AddHealthChecks().AddAsyncPoolCheck<Connection>("db");
        using var host = builder.Build();
        await host.StartAsync();
        var health = host.Services.GetRequiredService<HealthCheckService>();
        var pool = host.Services.GetRequiredKeyedService<AsyncPool<Connection>>("db");

        var first = pool.RentAsync().AsTask();
        await creating.Task.WaitAsync(Patience);
        var second = pool.RentAsync().AsTask();

        Assert.Equal(HealthStatus.Degraded, (await health.CheckHealthAsync()).Entries["pool:db"].Status);
        create.SetResult();
        await (await first.WaitAsync(Patience)).DisposeAsync();
        await (await second.WaitAsync(Patience)).DisposeAsync();
        await host.StopAsync();
    }

    [Fact]
    public async Task A_check_of_a_name_nobody_registered_fails_alone_with_its_failure_status()
    {
        var builder = NewBuilder();
        builder.Services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("a")));
        builder.Services.AddHealthChecks().AddAsyncPoolCheck<Connection>("db").AddAsyncPoolCheck<Connection>("dbb");
        using var host = builder.Build();
        await host.StartAsync();

        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        Assert.Equal(HealthStatus.Healthy, report.Entries["pool:db"].Status);
        Assert.Equal(HealthStatus.Degraded, report.Entries["pool:dbb"].Status);
        Assert.Equal("No AsyncPool<Connection> named 'dbb' is registered.", report.Entries["pool:dbb"].Description);
        await host.StopAsync();
    }

    [Fact]
    public async Task Two_containers_built_from_one_collection_have_a_pool_each()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("a"))).Configure(options => options.MaxSize = 1);
        services.AddHealthChecks().AddAsyncPoolCheck<Connection>("db");
        await using var first = services.BuildServiceProvider();
        await using var second = services.BuildServiceProvider();
        var pool = first.GetRequiredKeyedService<AsyncPool<Connection>>("db");
        await using var lease = await pool.RentAsync();
        var waiting = pool.RentAsync().AsTask();

        var secondReport = await second.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        Assert.Equal("Not created yet.", secondReport.Entries["pool:db"].Description);
        Assert.NotSame(pool, second.GetRequiredKeyedService<AsyncPool<Connection>>("db"));
        await lease.DisposeAsync();
        await (await waiting.WaitAsync(Patience)).DisposeAsync();
    }

    [Fact]
    public async Task The_check_judges_by_the_options_the_pool_was_created_with_not_by_the_instance_it_was_given()
    {
        var builder = NewBuilder();
        builder.Services.AddAsyncPool("db", (_, _) => ValueTask.FromResult(new Connection("a"))).Configure(options => options.MaxSize = 2);
        builder.Services.AddHealthChecks().AddAsyncPoolCheck<Connection>("db");
        using var host = builder.Build();
        await host.StartAsync();
        _ = host.Services.GetRequiredKeyedService<AsyncPool<Connection>>("db");

        host.Services.GetRequiredService<IOptionsMonitor<AsyncPoolOptions<Connection>>>().Get("db").MaxSize = 50;
        var entry = (await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["pool:db"];

        Assert.Equal("0 of 2 items are leased.", entry.Description);
        await host.StopAsync();
    }

    internal sealed record Server(string Address);

    internal sealed class Connection(string address) : IAsyncDisposable
    {
        public string Address { get; } = address;

        public bool Disposed { get; private set; }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
