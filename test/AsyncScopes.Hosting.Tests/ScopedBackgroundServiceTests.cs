using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

using static AsyncScopes.Hosting.Tests.TestHost;

namespace AsyncScopes.Hosting.Tests;

/// <summary><see cref="ScopedBackgroundService"/> in a real host.</summary>
[Collection(LeakTrackingCollectionDefinition.Name)]
public sealed class ScopedBackgroundServiceTests
{
    [Fact]
    public async Task Stopping_fires_first_so_children_finish_their_unit_and_the_stop_ends_quietly_with_nothing_left()
    {
        var worker = new Worker(async (scope, worker) =>
        {
            var drainer = scope.Start(
                async _ =>
                {
                    worker.Started.TrySetResult();
                    await WhenCancelled(scope.Stopping);
                    worker.Log.Enqueue("drained the queue"); // its unit of work, before the hard end
                },
                "drainer");
            await drainer;
            worker.Log.Enqueue("the work ended after its child");
        });
        using var host = Build(worker);
        await host.StartAsync();
        await worker.Started.Task.WaitAsync(Patience);

        await host.StopAsync().WaitAsync(Patience);

        Assert.Equal(["drained the queue", "the work ended after its child"], worker.Log);
        Assert.True(worker.ExecuteTask!.IsCompletedSuccessfully);
        Assert.False(worker.Scope!.Token.IsCancellationRequested); // all ended in the grace: never hard-cancelled
    }

    [Fact]
    public async Task A_stop_right_after_the_start_is_not_missed_even_before_the_work_has_its_scope()
    {
        for (int i = 0; i < 50; i++)
        {
            var worker = new Worker(async (scope, worker) => await WhenCancelled(scope.Stopping));
            using var host = Build(worker);
            await host.StartAsync();

            await host.StopAsync().WaitAsync(Patience); // no wait for the work to begin

            Assert.True(worker.ExecuteTask!.IsCompletedSuccessfully);
        }
    }

    [Fact]
    public async Task Disposing_a_service_that_was_not_stopped_waits_for_its_work()
    {
        var release = NewGate();
        var cancelled = NewGate();
        var worker = new Worker(async (scope, worker) =>
        {
            worker.Started.TrySetResult();
            await WhenCancelled(scope.Token);
            cancelled.SetResult();
            await release.Task; // its cleanup
        });
        using var host = Build(worker);
        await host.StartAsync();
        await worker.Started.Task.WaitAsync(Patience);

        var disposing = worker.Service.DisposeAsync().AsTask();
        await cancelled.Task.WaitAsync(Patience);
        Assert.False(disposing.IsCompleted);
        release.SetResult();

        await disposing.WaitAsync(Patience);
        Assert.True(worker.ExecuteTask!.IsCompleted);
        await worker.Service.DisposeAsync(); // again: released once
        Assert.Equal(["released its resources, the work ended"], worker.Log);
    }

    [Fact]
    public async Task A_child_that_ignores_Stopping_is_cancelled_when_the_hosts_shutdown_token_fires()
    {
        var worker = new Worker(async (scope, worker) =>
        {
            _ = scope.Start(
                async token =>
                {
                    worker.Started.TrySetResult();
                    await WhenCancelled(token); // only the hard end
                    worker.Log.Enqueue("cancelled");
                },
                "slow");
            await Task.CompletedTask;
        });
        using var host = Build(worker);
        await host.StartAsync();
        await worker.Started.Task.WaitAsync(Patience);
        using var shutdownTimeout = new CancellationTokenSource();

        Task stopping = host.StopAsync(shutdownTimeout.Token);
        Assert.False(stopping.IsCompleted); // in the grace: the child waits for the hard end
        await shutdownTimeout.CancelAsync();
        await stopping.WaitAsync(Patience);

        Assert.Equal(["cancelled"], worker.Log);
        Assert.True(worker.Scope!.Token.IsCancellationRequested);
        Assert.Equal(ScopeCancellationReason.Stop, worker.Scope.CancellationReason);
    }

    [Fact]
    public async Task A_child_that_ignores_cancellation_is_logged_by_name_and_the_stop_waits_for_it()
    {
        var time = new TimerWatchingTimeProvider();
        var release = NewGate();
        var worker = new Worker(
            (scope, worker) =>
            {
                _ = scope.Start(
                    async _ =>
                    {
                        worker.Started.TrySetResult();
                        await release.Task; // deaf to both tokens
                    },
                    "stubborn poller");
                return Task.CompletedTask;
            },
            new TaskScopeOptions { Name = "pollers", StragglerTimeout = TimeSpan.FromSeconds(5), TimeProvider = time });
        var logs = new LogRecorder();
        using var host = Build(worker, logs);
        await host.StartAsync();
        await worker.Started.Task.WaitAsync(Patience);

        Task stopping = host.StopAsync(new CancellationToken(canceled: true)); // the shutdown timeout has passed
        await time.TimerCreated(TimeSpan.FromSeconds(5)).WaitAsync(Patience); // the straggler watch, armed as Token fired
        time.Advance(TimeSpan.FromSeconds(5));

        var line = Assert.Single(logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
        Assert.Equal("Warning: stubborn poller of pollers still runs 00:00:05 after it was cancelled: something in it ignores cancellation, and holds up the shutdown.", line);
        Assert.False(stopping.IsCompleted); // nothing is abandoned
        release.SetResult();
        await stopping.WaitAsync(Patience);
    }

    [Fact]
    public async Task A_failing_child_faults_the_service_and_the_host_stops()
    {
        var failure = new InvalidOperationException("the feed broke");
        var worker = new Worker((scope, self) =>
        {
            _ = scope.Start(_ => Task.FromException(failure), "feed");
            return Task.Delay(Timeout.Infinite, scope.Token);
        });
        using var host = Build(worker);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        await host.StartAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(() => worker.ExecuteTask!.WaitAsync(Patience));

        await WhenCancelled(lifetime.ApplicationStopping).WaitAsync(Patience); // BackgroundServiceExceptionBehavior.StopHost
        await host.StopAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_host_started_and_stopped_200_times_leaves_no_scope_open()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            for (int i = 0; i < 200; i++)
            {
                var worker = new Worker(async (scope, worker) =>
                {
                    for (int child = 0; child < 3; child++)
                    {
                        _ = scope.Start(async token => await WhenCancelled(scope.Stopping), $"child {child}");
                    }

                    worker.Started.TrySetResult();
                    await WhenCancelled(scope.Stopping);
                });
                using var host = Build(worker);
                await host.StartAsync();
                await worker.Started.Task.WaitAsync(Patience);
                await host.StopAsync().WaitAsync(Patience);
                Assert.True(worker.ExecuteTask!.IsCompletedSuccessfully);
            }

            Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, scope => scope.Name == nameof(Worker));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    private static IHost Build(Worker worker, LogRecorder? logs = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.Services.AddSingleton<ILogger>(services => services.GetRequiredService<ILoggerFactory>().CreateLogger("worker"));
        builder.Services.AddHostedService(services =>
        {
            worker.Attach(services.GetRequiredService<ILogger>());
            return worker.Service;
        });
        return builder.Build();
    }

    /// <summary>A test's service: its work is a delegate, and it records what happened.</summary>
    private sealed class Worker(Func<TaskScope, Worker, Task> work, TaskScopeOptions? options = null)
    {
        public TaskCompletionSource Started { get; } = NewGate();

        public ConcurrentQueue<string> Log { get; } = new();

        public Service Service { get; private set; } = null!;

        public TaskScope? Scope => Service.CurrentScope;

        public Task? ExecuteTask => Service.ExecuteTask;

        public void Attach(ILogger logger) => Service = new Service(logger, this, work, options);
    }

    private sealed class Service(ILogger logger, Worker worker, Func<TaskScope, Worker, Task> work, TaskScopeOptions? options)
        : ScopedBackgroundService(logger)
    {
        public TaskScope? CurrentScope { get; private set; }

        protected override async ValueTask DisposeAsyncCore()
        {
            worker.Log.Enqueue($"released its resources, the work {(ExecuteTask is null or { IsCompleted: true } ? "ended" : "still running")}");
            await base.DisposeAsyncCore();
        }

        protected override TaskScopeOptions ScopeOptions => options ?? new TaskScopeOptions { Name = nameof(Worker), StragglerTimeout = TimeSpan.FromSeconds(5) };

        protected override Task ExecuteAsync(TaskScope scope)
        {
            CurrentScope = scope;
            return work(scope, worker);
        }
    }
}

/// <summary>Alone: leak tracking is global.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LeakTrackingCollectionDefinition
{
    public const string Name = "LeakTracking";
}

/// <summary>Keeps what the host logs, one line per message: its level, its text, and the type and message of its
/// exception.</summary>
internal sealed class LogRecorder : ILoggerProvider
{
    private readonly Lock _lock = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Logged)> _waiters = [];

    public ConcurrentQueue<string> Lines { get; } = new();

    /// <summary>Completes with the first line, logged before or after the call, that <paramref name="match"/> accepts.</summary>
    public Task<string> WhenLogged(Func<string, bool> match)
    {
        var logged = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (Lines.FirstOrDefault(match) is { } line)
            {
                logged.SetResult(line);
            }
            else
            {
                _waiters.Add((match, logged));
            }
        }

        return logged.Task;
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private void Add(string line)
    {
        lock (_lock)
        {
            Lines.Enqueue(line);
            foreach (var waiter in _waiters.Where(waiter => waiter.Match(line)).ToList())
            {
                waiter.Logged.SetResult(line);
                _waiters.Remove(waiter);
            }
        }
    }

    private sealed class Logger(LogRecorder recorder) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            recorder.Add($"{logLevel}: {formatter(state, exception)}{(exception is null ? string.Empty : $" {exception.GetType().Name}: {exception.Message}")}");
    }
}

/// <summary>A <see cref="FakeTimeProvider"/> that tells when a timer with a given due time was created: a test
/// advances the clock only once the timer it means to fire exists.</summary>
internal sealed class TimerWatchingTimeProvider : FakeTimeProvider
{
    private readonly ConcurrentDictionary<TimeSpan, TaskCompletionSource> _created = new();

    public Task TimerCreated(TimeSpan dueTime) => Gate(dueTime).Task;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        Gate(dueTime).TrySetResult();
        return timer;
    }

    private TaskCompletionSource Gate(TimeSpan dueTime) =>
        _created.GetOrAdd(dueTime, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}
