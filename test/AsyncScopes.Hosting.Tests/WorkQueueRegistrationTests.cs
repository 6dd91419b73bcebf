using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

using static AsyncScopes.Hosting.Tests.TestHost;

namespace AsyncScopes.Hosting.Tests;

/// <summary><see cref="WorkQueueServiceCollectionExtensions.AddWorkQueue"/> and its health check in a real host.</summary>
public sealed class WorkQueueRegistrationTests
{
    [Fact]
    public async Task The_host_stop_drains_the_queue_while_its_handlers_can_still_use_the_container()
    {
        var handled = new ConcurrentQueue<int>();
        var release = NewGate();
        var builder = NewBuilder(new() { ["Queues:mail:Workers"] = "1" });
        builder.Services.AddSingleton(handled);
        builder.Services.AddWorkQueue<int>("mail", async (services, item, _) =>
        {
            await release.Task;
            services.GetRequiredService<ConcurrentQueue<int>>().Enqueue(item); // resolved after the host began to stop
        }).BindConfiguration("Queues:mail");
        using var host = builder.Build();
        await host.StartAsync();
        var queue = host.Services.GetRequiredKeyedService<WorkQueue<int>>("mail");
        for (int i = 1; i <= 3; i++)
        {
            await queue.EnqueueAsync(i);
        }

        var stopping = host.StopAsync();
        Assert.False(stopping.IsCompleted);
        release.SetResult();
        await stopping.WaitAsync(Patience);

        Assert.Equal([1, 2, 3], handled); // one worker, from configuration: in order, none lost
        Assert.Equal(new WorkQueueStatistics(0, 0, 3, 0), queue.Statistics);
        await Assert.ThrowsAsync<InvalidOperationException>(() => queue.EnqueueAsync(4).AsTask()); // completed
    }

    [Fact]
    public async Task Items_not_done_within_the_drain_timeout_are_cancelled_and_counted_in_the_log()
    {
        var time = new TimerWatchingTimeProvider();
        var logs = new LogRecorder();
        var running = NewGate();
        var builder = NewBuilder();
        builder.Logging.AddProvider(logs);
        builder.Services.AddWorkQueue<int>("mail", async (_, _, cancellationToken) =>
        {
            running.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken); // until cancelled
        }).Configure(options => (options.Workers, options.DrainTimeout, options.TimeProvider) = (1, TimeSpan.FromSeconds(5), time));
        using var host = builder.Build();
        await host.StartAsync();
        var queue = host.Services.GetRequiredKeyedService<WorkQueue<int>>("mail");
        await queue.EnqueueAsync(1);
        await queue.EnqueueAsync(2);
        await running.Task.WaitAsync(Patience);

        var stopping = host.StopAsync();
        await time.TimerCreated(TimeSpan.FromSeconds(5)).WaitAsync(Patience);
        Assert.False(stopping.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(5));
        await stopping.WaitAsync(Patience);

        Assert.Contains(
            "Warning: Work queue mail stopped with 2 items not processed: its drain time or the host's shutdown timeout ran out.",
            logs.Lines);
    }

    [Fact]
    public async Task Code_settings_stay_when_configuration_has_none_and_bad_ones_are_listed_at_start()
    {
        var builder = NewBuilder(new() { ["Queues:mail:Workers"] = "0", ["Queues:mail:DrainTimeout"] = "-00:00:01" });
        builder.Services.AddWorkQueue<int>("mail", (_, _, _) => Task.CompletedTask)
            .Configure(options => options.Capacity = 5)
            .BindConfiguration("Queues:mail");
        using var host = builder.Build();

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal(
            [
                "'mail': Workers must be at least 1 (it is 0).",
                "'mail': DrainTimeout must be TimeSpan.Zero or positive, at most about 49.7 days (it is -00:00:01).",
            ],
            thrown.Failures);
        var options = host.Services.GetRequiredService<IOptionsMonitor<WorkQueueOptions<int>>>();
        Assert.Throws<OptionsValidationException>(() => options.Get("mail"));
    }

    [Fact]
    public async Task Options_given_in_code_keep_their_own_name_and_settings()
    {
        var builder = NewBuilder();
        builder.Services.AddWorkQueue<int>("mail", (_, _, _) => Task.CompletedTask)
            .Configure(options => (options.Capacity, options.Workers, options.Name) = (5, 2, "outgoing mail"));
        using var host = builder.Build();
        await host.StartAsync();

        var options = host.Services.GetRequiredService<IOptionsMonitor<WorkQueueOptions<int>>>().Get("mail");

        Assert.Equal(("outgoing mail", 5, 2), (options.Name, options.Capacity, options.Workers));
        await host.StopAsync();
    }

    [Fact]
    public async Task The_health_check_reports_a_backed_up_queue_and_never_creates_one()
    {
        var release = NewGate();
        var running = NewGate();
        var builder = NewBuilder();
        builder.Services.AddWorkQueue<int>("mail", async (_, _, _) =>
        {
            running.TrySetResult();
            await release.Task;
        }).Configure(options => options.Workers = 1);
        builder.Services.AddHealthChecks().AddWorkQueueCheck<int>("mail", maxPending: 2);
        using var host = builder.Build();
        await host.StartAsync();
        var health = host.Services.GetRequiredService<HealthCheckService>();
        Assert.Equal("Not created yet.", (await health.CheckHealthAsync()).Entries["queue:mail"].Description);

        var queue = host.Services.GetRequiredKeyedService<WorkQueue<int>>("mail");
        await queue.EnqueueAsync(1);
        await running.Task.WaitAsync(Patience); // the only worker holds item 1
        await queue.EnqueueAsync(2);
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status); // one waits: under the limit
        await queue.EnqueueAsync(3);

        var backedUp = (await health.CheckHealthAsync()).Entries["queue:mail"];
        Assert.Equal(HealthStatus.Degraded, backedUp.Status);
        Assert.Equal("Backed up: 2 items wait to start (the limit is 2).", backedUp.Description);
        Assert.Equal(2L, backedUp.Data["pending"]);

        release.SetResult();
        await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status);
        await host.StopAsync();
    }

    [Fact]
    public async Task Queues_drain_in_registration_order_so_one_may_feed_the_next_as_it_drains()
    {
        var delivered = new ConcurrentQueue<string>();
        var builder = NewBuilder();
        builder.Services.AddWorkQueue<string>("first", (services, item, cancellationToken) =>
            services.GetRequiredKeyedService<WorkQueue<string>>("second").EnqueueAsync(item + " via first", cancellationToken).AsTask());
        builder.Services.AddWorkQueue<string>("second", (_, item, _) =>
        {
            delivered.Enqueue(item);
            return Task.CompletedTask;
        });
        using var host = builder.Build();
        await host.StartAsync();
        var first = host.Services.GetRequiredKeyedService<WorkQueue<string>>("first");
        _ = host.Services.GetRequiredKeyedService<WorkQueue<string>>("second");
        await first.EnqueueAsync("a");

        await host.StopAsync().WaitAsync(Patience);

        Assert.Equal(["a via first"], delivered);
    }

    [Fact]
    public async Task A_handler_deaf_to_cancellation_is_named_in_the_log_five_seconds_later_and_still_awaited()
    {
        var (host, time, logs, release) = await StartWithOneItemAsync(honoursCancellation: false);
        using (host)
        {
            var stopping = host.StopAsync();
            await time.TimerCreated(TimeSpan.FromSeconds(10)).WaitAsync(Patience); // the drain timeout
            time.Advance(TimeSpan.FromSeconds(10));
            await time.TimerCreated(TimeSpan.FromSeconds(5)).WaitAsync(Patience); // the grace after cancelling
            Assert.DoesNotContain(logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
            time.Advance(TimeSpan.FromSeconds(5));

            Assert.Contains(
                "Warning: Work queue mail still runs 1 handlers 00:00:05 after they were cancelled at the end of its drain time or the host's shutdown timeout; the stop waits for them.",
                logs.Lines);
            Assert.False(stopping.IsCompleted);
            release.SetResult();
            await stopping.WaitAsync(Patience);
        }
    }

    [Fact]
    public async Task A_handler_that_ends_when_cancelled_is_not_reported()
    {
        var (host, time, logs, _) = await StartWithOneItemAsync(honoursCancellation: true);
        using (host)
        {
            var stopping = host.StopAsync();
            await time.TimerCreated(TimeSpan.FromSeconds(10)).WaitAsync(Patience);
            time.Advance(TimeSpan.FromSeconds(10));
            await stopping.WaitAsync(Patience);
            time.Advance(TimeSpan.FromSeconds(5)); // had the grace's timer outlived the drain, it would fire now

            Assert.DoesNotContain(logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
            Assert.Contains(logs.Lines, line => line.Contains("stopped with 1 items not processed", StringComparison.Ordinal));
        }
    }

    // A started host whose queue (one worker, a 10 s drain timeout on fake time) runs one item until released, or
    // until cancelled when the handler honours its token.
    private static async Task<(IHost Host, TimerWatchingTimeProvider Time, LogRecorder Logs, TaskCompletionSource Release)> StartWithOneItemAsync(
        bool honoursCancellation)
    {
        var time = new TimerWatchingTimeProvider();
        var logs = new LogRecorder();
        var running = NewGate();
        var release = NewGate();
        var builder = NewBuilder();
        builder.Logging.AddProvider(logs);
        builder.Services.AddWorkQueue<int>("mail", async (_, _, cancellationToken) =>
        {
            running.TrySetResult();
            await (honoursCancellation ? release.Task.WaitAsync(cancellationToken) : release.Task);
        }).Configure(options => (options.Workers, options.DrainTimeout, options.TimeProvider) = (1, TimeSpan.FromSeconds(10), time));
        var host = builder.Build();
        await host.StartAsync();
        await host.Services.GetRequiredKeyedService<WorkQueue<int>>("mail").EnqueueAsync(1);
        await running.Task.WaitAsync(Patience);
        return (host, time, logs, release);
    }

    [Fact]
    public async Task A_queue_its_owner_completed_is_left_to_the_owner()
    {
        var (host, _, logs, _) = await StartWithOneItemAsync(honoursCancellation: true);
        using (host)
        {
            var queue = host.Services.GetRequiredKeyedService<WorkQueue<int>>("mail");
            var result = await queue.CompleteAsync(new CancellationToken(canceled: true)); // the owner acts on it

            await host.StopAsync().WaitAsync(Patience);

            Assert.Single(result.Unprocessed);
            Assert.DoesNotContain(logs.Lines, line => line.Contains("Work queue mail", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Without_a_backlog_limit_the_check_reports_a_bounded_queue_full_and_an_unbounded_one_as_misconfigured()
    {
        var release = NewGate();
        var running = NewGate();
        var builder = NewBuilder();
        builder.Services.AddWorkQueue<int>("bounded", async (_, _, _) =>
        {
            running.TrySetResult();
            await release.Task;
        }).Configure(options => (options.Workers, options.Capacity) = (1, 2));
        builder.Services.AddWorkQueue<string>("unbounded", (_, _, _) => Task.CompletedTask);
        builder.Services.AddHealthChecks().AddWorkQueueCheck<int>("bounded").AddWorkQueueCheck<string>("unbounded");
        using var host = builder.Build();
        await host.StartAsync();
        var health = host.Services.GetRequiredService<HealthCheckService>();
        var bounded = host.Services.GetRequiredKeyedService<WorkQueue<int>>("bounded");
        _ = host.Services.GetRequiredKeyedService<WorkQueue<string>>("unbounded");
        await bounded.EnqueueAsync(1);
        await running.Task.WaitAsync(Patience);
        await bounded.EnqueueAsync(2);
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Entries["queue:bounded"].Status);

        await bounded.EnqueueAsync(3);
        var report = await health.CheckHealthAsync();

        Assert.Equal("Backed up: 2 items wait to start (the limit is 2).", report.Entries["queue:bounded"].Description);
        Assert.Equal(HealthStatus.Degraded, report.Entries["queue:unbounded"].Status);
        Assert.Equal(
            "'unbounded' is unbounded: its check needs the number of waiting items that makes it backed up (maxPending).",
            report.Entries["queue:unbounded"].Description);
        release.SetResult();
        await host.StopAsync();
    }

    [Fact]
    public void A_check_needs_a_backlog_of_at_least_one()
    {
        var checks = new ServiceCollection().AddHealthChecks();

        Assert.Throws<ArgumentOutOfRangeException>(() => checks.AddWorkQueueCheck<int>("mail", maxPending: 0));
    }
}
