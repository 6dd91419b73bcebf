using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AsyncScopes.Hosting;

/// <summary>
/// A <see cref="TaskScope"/> that lives as long as the host, for children that others start: one per WebSocket or
/// server-sent-events connection, started by its request, so that no connection outlives the service. Registered by
/// name with <see cref="Microsoft.Extensions.DependencyInjection.HostedTaskScopeServiceCollectionExtensions.AddHostedTaskScope"/>,
/// and resolved with <c>[FromKeyedServices("name")]</c>.
/// </summary>
/// <remarks>
/// <para>Stopping begins as soon as the host begins to stop (<see cref="IHostedLifecycleService.StoppingAsync"/>),
/// before any hosted service's <c>StopAsync</c>, and so before ASP.NET Core's server stops: the server waits for its
/// requests, and would wait for these children until the shutdown timeout, then abort them. It is the scope's
/// two-phase stop (<see cref="TaskScope.Stop(TimeSpan)"/>): <see cref="TaskScope.Stopping"/> fires at once, so that
/// each child ends its unit of work (a connection closes with 1001); <see cref="TaskScope.Token"/> fires when the
/// host's shutdown token does, once its shutdown timeout (<c>HostOptions.ShutdownTimeout</c>) has passed. The scope's
/// <c>StopAsync</c> waits until every child has ended; a child still running
/// <see cref="HostedTaskScopeOptions.StragglerTimeout"/> after <see cref="TaskScope.Token"/> fired is logged as a
/// warning with its name, and awaited. A child started during the grace
/// still runs, with <see cref="TaskScope.Stopping"/> fired already; once <see cref="TaskScope.Token"/> fired, a child
/// started is cancelled without running; once the scope closed,
/// <see cref="TaskScope.Start(Func{CancellationToken, Task}, string?)"/> throws <see cref="InvalidOperationException"/>.
/// A request handler checks <see cref="TaskScope.Stopping"/> first, to refuse the request (a 503), and catches that
/// exception for the request that comes between the check and the start.</para>
/// <para>A child's failure is a failure of the service, as in any <see cref="TaskScope"/>: the scope cancels the other
/// children, starts no more, and, once they ended, logs the failure as an error; with
/// <see cref="HostedTaskScopeOptions.StopHostOnFailure"/> (the default) it stops the host at once, as a failed
/// <see cref="BackgroundService"/> does by default. A child that may end badly without concerning the others (a client
/// that vanished) catches its own exceptions.</para>
/// <para>The scope makes no span (tracing, <see cref="ScopeDiagnostics.ActivitySourceName"/>): a span as long as the
/// host would hold every child's spans in one trace; a child runs in the trace of whoever started it (its request).
/// Leak tracking lists it.</para>
/// <para>Disposal (by the container) cancels the children of a scope that was never stopped, waits for them, and logs
/// how it ended.</para>
/// </remarks>
public sealed class HostedTaskScope : IHostedLifecycleService, IAsyncDisposable
{
    private readonly bool _stopHostOnFailure;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger _logger;
    private readonly StragglerLog _stragglers;
    private readonly Lazy<Task> _ended;
    private readonly CancellationTokenRegistration _cancelled;
    private CancellationTokenRegistration _shutdown;
    private int _stopBegun;

    internal HostedTaskScope(string name, HostedTaskScopeOptions options, IHostApplicationLifetime lifetime, ILogger logger)
    {
        Name = name;
        _stopHostOnFailure = options.StopHostOnFailure;
        _lifetime = lifetime;
        _logger = logger;
        _ended = new Lazy<Task>(EndAsync);
        Scope = new TaskScope(new TaskScopeOptions { Name = name, StragglerTimeout = options.StragglerTimeout, TimeProvider = options.TimeProvider, Untraced = true });
        _stragglers = new StragglerLog(logger, () => Scope);
        _cancelled = Scope.Token.UnsafeRegister(static state => ((HostedTaskScope)state!).OnCancelled(), this);
    }

    /// <summary>The scope's name: its key in the container, and its <see cref="TaskScopeOptions.Name"/>.</summary>
    public string Name { get; }

    /// <summary>
    /// The scope: start children with <see cref="TaskScope.Start(Func{CancellationToken, Task}, string?)"/> (named,
    /// for the straggler log), and give them <see cref="TaskScope.Stopping"/> to end their unit of work when the host
    /// stops. The host stops, joins and disposes it: do not call <see cref="TaskScope.JoinAsync"/> or
    /// <see cref="TaskScope.DisposeAsync"/> yourself.
    /// </summary>
    public TaskScope Scope { get; }

    // The host calls these. Only the stop does anything: the scope runs from its creation.
    Task IHostedLifecycleService.StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    Task IHostedService.StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    Task IHostedLifecycleService.StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // The first phase, begun before any hosted service's StopAsync and not waited for here: another hosted scope's
    // StoppingAsync, next, must not wait for these children to be told to stop too. The host's token fires once its
    // shutdown timeout has passed: the grace ends then.
    Task IHostedLifecycleService.StoppingAsync(CancellationToken cancellationToken)
    {
        BeginStop(cancellationToken);
        return Task.CompletedTask;
    }

    // Waits until every child has ended, however long past the host's shutdown timeout that is; never faults (a
    // failure is logged). The server, stopped before (it is the last hosted service), has waited for its requests,
    // which end as their children do.
    async Task IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        BeginStop(cancellationToken); // a host that never called StoppingAsync
        await _ended.Value.ConfigureAwait(false);
        _shutdown.Dispose();
    }

    Task IHostedLifecycleService.StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Cancels the children if the host never stopped the scope, waits until every child has ended, and logs
    /// how the scope ended, a child's failure included.</summary>
    /// <returns>A task that completes when no child runs any more; it never faults.</returns>
    public async ValueTask DisposeAsync()
    {
        Scope.Cancel(); // nothing once the stop has ended the scope
        await _ended.Value.ConfigureAwait(false);
        await Scope.DisposeAsync().ConfigureAwait(false);
        _shutdown.Dispose();
        _cancelled.Dispose();
    }

    private void BeginStop(CancellationToken shutdown)
    {
        if (Interlocked.Exchange(ref _stopBegun, 1) == 0)
        {
            Scope.Stop(Timeout.InfiniteTimeSpan); // the grace is the host's
            _shutdown = shutdown.UnsafeRegister(static scope => ((TaskScope)scope!).Cancel(), Scope);
        }
    }

    // The scope's token fired: from now on a child may become a straggler; a failure stops the host.
    private void OnCancelled()
    {
        _stragglers.Start();
        if (Scope.CancellationReason == ScopeCancellationReason.Failure)
        {
            _ = _ended.Value; // the failure is logged once the other children have ended
            if (_stopHostOnFailure)
            {
                // Not on this thread, a failing child's, inside the cancellation: the host's ApplicationStopping
                // callbacks run in StopApplication.
                ThreadPool.UnsafeQueueUserWorkItem(static lifetime => lifetime.StopApplication(), _lifetime, preferLocal: false);
            }
        }
    }

    // The one join, begun by the stop or by a failure, whichever is first; logs how the scope ended.
    private async Task EndAsync()
    {
        Task join = Scope.JoinAsync();
        await join.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stragglers.Stop();
        if (join.Exception is { } failures)
        {
            HostingLog.Failed(_logger, failures.InnerExceptions.Count == 1 ? failures.InnerExceptions[0] : failures, Name);
        }
        else
        {
            HostingLog.Ended(_logger, Name, Scope.CancellationReason == ScopeCancellationReason.Stop && !Scope.Token.IsCancellationRequested
                ? "every child ended in the grace"
                : "the children still running were cancelled");
        }
    }
}
