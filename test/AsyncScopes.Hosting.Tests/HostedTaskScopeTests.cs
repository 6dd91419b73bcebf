using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

using static AsyncScopes.Hosting.Tests.TestHost;

namespace AsyncScopes.Hosting.Tests;

/// <summary><see cref="HostedTaskScope"/> in a real host, with a service that stands for ASP.NET Core's server.</summary>
[Collection(LeakTrackingCollectionDefinition.Name)]
public sealed class HostedTaskScopeTests
{
    private const string Name = "connections";

    [Fact]
    public async Task Stopping_fires_as_the_host_begins_to_stop_so_the_server_that_waits_for_its_requests_stops()
    {
        var events = new ConcurrentQueue<string>();
        var requests = new ConcurrentQueue<Task>();
        using var host = Build(server: new Server(events, requests));
        await host.StartAsync();
        var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);
        var started = NewGate();
        Task child = connections.Scope.Start(
            async _ =>
            {
                started.SetResult();
                await WhenCancelled(connections.Scope.Stopping);
                events.Enqueue("the connection closed"); // its unit of work, before the hard end
            },
            "connection 1");
        requests.Enqueue(child); // the request that started it: the server waits for it as it stops
        await started.Task.WaitAsync(Patience);

        await host.StopAsync().WaitAsync(Patience); // had Stopping not fired first, the server would wait forever

        Assert.Equal(["the connection closed", "the server stopped"], events);
        Assert.True(child.IsCompletedSuccessfully);
        Assert.False(connections.Scope.Token.IsCancellationRequested); // all ended in the grace: never hard-cancelled
        Assert.Throws<InvalidOperationException>(() => { _ = connections.Scope.Start(_ => Task.CompletedTask); }); // closed
    }

    [Fact]
    public async Task A_child_that_ignores_Stopping_is_cancelled_when_the_hosts_shutdown_token_fires()
    {
        var logs = new LogRecorder();
        using var host = Build(logs);
        await host.StartAsync();
        var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);
        var started = NewGate();
        Task child = connections.Scope.Start(
            async token =>
            {
                started.SetResult();
                await Task.Delay(Timeout.Infinite, token); // only the hard end
            },
            "connection 1");
        await started.Task.WaitAsync(Patience);
        using var shutdownTimeout = new CancellationTokenSource();

        Task stopping = host.StopAsync(shutdownTimeout.Token);
        await WhenCancelled(connections.Scope.Stopping).WaitAsync(Patience);
        Assert.False(stopping.IsCompleted); // in the grace: the child waits for the hard end
        bool? lateSawStopping = await connections.Scope.Start(_ => Task.FromResult<bool?>(connections.Scope.Stopping.IsCancellationRequested));
        Assert.True(lateSawStopping); // a child started in the grace runs, told at once to end
        await shutdownTimeout.CancelAsync();
        await stopping.WaitAsync(Patience);

        Assert.True(child.IsCanceled);
        Assert.Equal(ScopeCancellationReason.Stop, connections.Scope.CancellationReason);
        Assert.Contains("Information: connections stopped: the children still running were cancelled.", logs.Lines);
    }

    [Fact]
    public async Task A_child_that_ignores_cancellation_is_logged_by_name_and_the_stop_waits_for_it()
    {
        var time = new TimerWatchingTimeProvider();
        var logs = new LogRecorder();
        using var host = Build(logs, options => options.TimeProvider = time);
        await host.StartAsync();
        var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);
        var started = NewGate();
        var release = NewGate();
        _ = connections.Scope.Start(
            async _ =>
            {
                started.SetResult();
                await release.Task; // deaf to both tokens
            },
            "connection of ada");
        await started.Task.WaitAsync(Patience);

        Task stopping = host.StopAsync(new CancellationToken(canceled: true)); // the shutdown timeout has passed
        await time.TimerCreated(TimeSpan.FromSeconds(5)).WaitAsync(Patience); // the straggler watch, armed as Token fired
        time.Advance(TimeSpan.FromSeconds(5) - TimeSpan.FromTicks(1));
        Assert.DoesNotContain(logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
        time.Advance(TimeSpan.FromTicks(1));

        var line = Assert.Single(logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
        Assert.Equal("Warning: connection of ada of connections still runs 00:00:05 after it was cancelled: something in it ignores cancellation, and holds up the shutdown.", line);
        Assert.False(stopping.IsCompleted); // nothing is abandoned
        release.SetResult();
        await stopping.WaitAsync(Patience);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_failing_child_cancels_the_others_is_logged_once_they_ended_and_stops_the_host_unless_told_not_to(bool stopHost)
    {
        var logs = new LogRecorder();
        using var host = Build(logs, options => options.StopHostOnFailure = stopHost);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        await host.StartAsync();
        var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);
        var started = NewGate();
        var cleanedUp = NewGate();
        Task other = connections.Scope.Start(
            async token =>
            {
                started.SetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, token);
                }
                finally
                {
                    await cleanedUp.Task; // the failure's log waits for this
                }
            },
            "connection of ada");
        await started.Task.WaitAsync(Patience);

        _ = connections.Scope.Start(_ => throw new InvalidOperationException("the feed broke"), "feed");
        await WhenCancelled(connections.Scope.Token).WaitAsync(Patience);
        if (stopHost)
        {
            await WhenCancelled(lifetime.ApplicationStopping).WaitAsync(Patience); // before the others ended
        }

        Assert.DoesNotContain(logs.Lines, line => line.StartsWith("Error", StringComparison.Ordinal));
        cleanedUp.SetResult();

        string error = await logs.WhenLogged(line => line.StartsWith("Error", StringComparison.Ordinal)).WaitAsync(Patience);
        Assert.Equal("Error: A child of connections failed: the scope cancelled the others, and starts no more. InvalidOperationException: the feed broke", error);
        Assert.True(other.IsCanceled);
        Assert.Throws<InvalidOperationException>(() => { _ = connections.Scope.Start(_ => Task.CompletedTask); }); // closed
        Assert.Equal(stopHost, lifetime.ApplicationStopping.IsCancellationRequested);
        await host.StopAsync().WaitAsync(Patience);
        Assert.Single(logs.Lines, line => line.StartsWith("Error", StringComparison.Ordinal)); // the stop does not log it again
    }

    [Fact]
    public async Task Disposing_a_host_that_was_not_stopped_cancels_the_children_and_waits_for_them()
    {
        var host = Build();
        await host.StartAsync();
        var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);
        var cancelled = NewGate();
        var release = NewGate();
        var started = NewGate();
        Task child = connections.Scope.Start(async token =>
        {
            started.SetResult();
            using (token.Register(() => cancelled.SetResult()))
            {
                await release.Task; // its cleanup
            }
        });
        await started.Task.WaitAsync(Patience);

        Task disposing = ((IAsyncDisposable)host).DisposeAsync().AsTask();
        await cancelled.Task.WaitAsync(Patience);
        Assert.False(disposing.IsCompleted);
        release.SetResult();
        await disposing.WaitAsync(Patience);

        Assert.True(child.IsCompleted);
        Assert.Equal(ScopeCancellationReason.Cancel, connections.Scope.CancellationReason);
    }

    [Fact]
    public async Task A_failure_while_a_host_disposed_without_a_stop_cancels_the_children_is_logged()
    {
        var logs = new LogRecorder();
        var host = Build(logs);
        await host.StartAsync();
        var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);
        var started = NewGate();
        _ = connections.Scope.Start(
            async token =>
            {
                started.SetResult();
                await WhenCancelled(token);
                throw new InvalidOperationException("the cleanup failed");
            },
            "connection of ada");
        await started.Task.WaitAsync(Patience);

        await ((IAsyncDisposable)host).DisposeAsync().AsTask().WaitAsync(Patience);

        Assert.Contains("Error: A child of connections failed: the scope cancelled the others, and starts no more. InvalidOperationException: the cleanup failed", logs.Lines);
    }

    [Fact]
    public async Task Two_hosted_scopes_are_both_told_to_stop_before_the_host_waits_for_either()
    {
        var builder = NewBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddHostedTaskScope("a");
        builder.Services.AddHostedTaskScope("b");
        using var host = builder.Build();
        await host.StartAsync();
        var a = host.Services.GetRequiredKeyedService<HostedTaskScope>("a");
        var b = host.Services.GetRequiredKeyedService<HostedTaskScope>("b");

        // Each child ends only once the other scope was told to stop: waiting for one scope's children before telling
        // the next to stop would hold the host's stop until its shutdown timeout.
        var giveUp = NewGate(); // lets the test fail rather than hang
        Task childOfA = a.Scope.Start(_ => Task.WhenAny(WhenCancelled(b.Scope.Stopping), giveUp.Task), "a's connection");
        Task childOfB = b.Scope.Start(_ => Task.WhenAny(WhenCancelled(a.Scope.Stopping), giveUp.Task), "b's connection");

        try
        {
            await host.StopAsync().WaitAsync(Patience);
        }
        finally
        {
            giveUp.TrySetResult();
        }

        Assert.True(childOfA.IsCompletedSuccessfully);
        Assert.True(childOfB.IsCompletedSuccessfully);
        Assert.False(a.Scope.Token.IsCancellationRequested); // both in the grace
        Assert.False(b.Scope.Token.IsCancellationRequested);
    }

    [Fact]
    public async Task The_scope_makes_no_span_so_a_child_started_in_a_request_runs_in_the_requests_trace()
    {
        using var requests = new ActivitySource("AsyncScopes.Hosting.Tests.Requests");
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ScopeDiagnostics.ActivitySourceName || source == requests,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener); // before the scope is made, as a tracer built at startup is
        using var host = Build();
        await host.StartAsync();
        var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);

        Activity? seenByChild;
        Activity request;
        using (request = requests.StartActivity("GET /ws")!)
        {
            seenByChild = await connections.Scope.Start(_ => Task.FromResult(Activity.Current));
        }

        await host.StopAsync().WaitAsync(Patience);
        Assert.Same(request, seenByChild);
    }

    [Fact]
    public async Task Settings_out_of_range_fail_the_start_with_the_scopes_name_and_a_name_is_registered_once()
    {
        using var host = Build(configure: options => options.StragglerTimeout = TimeSpan.FromSeconds(-2));

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal(
            "'connections': StragglerTimeout must be positive, at most about 49.7 days, or Timeout.InfiniteTimeSpan (it is -00:00:02).",
            Assert.Single(failure.Failures));
        var services = new ServiceCollection();
        services.AddHostedTaskScope(Name);
        var taken = Assert.Throws<InvalidOperationException>(() => services.AddHostedTaskScope(Name));
        Assert.Equal("HostedTaskScope 'connections' is already registered.", taken.Message);
        Assert.Throws<ArgumentException>(() => services.AddHostedTaskScope(" "));
    }

    [Fact]
    public async Task A_host_started_and_stopped_200_times_with_children_leaves_no_scope_open()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            for (int i = 0; i < 200; i++)
            {
                using var host = Build();
                await host.StartAsync();
                var connections = host.Services.GetRequiredKeyedService<HostedTaskScope>(Name);
                for (int child = 0; child < 3; child++)
                {
                    _ = connections.Scope.Start(async _ => await WhenCancelled(connections.Scope.Stopping), $"connection {child}");
                }

                await host.StopAsync().WaitAsync(Patience);
                Assert.True(connections.Scope.JoinAsync().IsCompletedSuccessfully);
            }

            Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, scope => scope.Name == Name);
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    // The scope, and after it (as ASP.NET Core's server is, the last hosted service) a service whose stop is recorded.
    private static IHost Build(LogRecorder? logs = null, Action<HostedTaskScopeOptions>? configure = null, Server? server = null)
    {
        var builder = NewBuilder();
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.Services.AddHostedTaskScope(Name).Configure(configure ?? (_ => { }));
        builder.Services.AddHostedService(_ => server ?? new Server(new(), new()));
        return builder.Build();
    }

    /// <summary>Stands for ASP.NET Core's server: its stop waits for its requests.</summary>
    private sealed class Server(ConcurrentQueue<string> events, ConcurrentQueue<Task> requests) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            await Task.WhenAll(requests).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            events.Enqueue("the server stopped");
        }
    }
}
