using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AsyncScopes.Hosting;

/// <summary>
/// A <see cref="BackgroundService"/> whose work runs as the body of a <see cref="TaskScope"/>: the children it starts
/// are the scope's, so that none outlives the service, and stopping is the scope's two-phase stop, with the host's
/// shutdown timeout (<c>HostOptions.ShutdownTimeout</c>) as the grace.
/// </summary>
/// <remarks>
/// <para>Stopping (<see cref="StopAsync"/>): the scope's <see cref="TaskScope.Stopping"/> token fires at once, so
/// that the work and its children finish the unit they are in; its <see cref="TaskScope.Token"/> fires when the
/// host's shutdown token does (the shutdown timeout has passed), or at once if a child fails. A child still running
/// <see cref="TaskScopeOptions.StragglerTimeout"/> after that ignores cancellation: it is logged as a warning with
/// its name (<see cref="TaskScope.Start(Func{CancellationToken, Task}, string?)"/>). <see cref="StopAsync"/> returns
/// only once the work and every child have ended, however long past the timeout that is.</para>
/// <para>A failure of the work or of a child ends the scope (the other children are cancelled and awaited) and
/// faults <see cref="BackgroundService.ExecuteTask"/>: the host logs it and, with
/// <c>BackgroundServiceExceptionBehavior.StopHost</c> (the default), stops, as for any background service. A
/// stop ends the work quietly: an <see cref="OperationCanceledException"/> of the scope's tokens is not a failure.</para>
/// </remarks>
public abstract class ScopedBackgroundService : BackgroundService, IAsyncDisposable
{
    private readonly StragglerLog _stragglers;
    private TaskScope? _scope;

    // A stop can come before the work has its scope (the host starts the work on the thread pool): StopAsync records
    // it, the work's start looks for it, and whichever of the two sees both applies it, once.
    private CancellationToken _stopToken;
    private int _stopRequested;
    private int _stopApplied;
    private CancellationTokenRegistration _stopRegistration;
    private int _disposed;

    /// <param name="logger">Where stragglers are logged.</param>
    /// <exception cref="ArgumentNullException"><paramref name="logger"/> is null.</exception>
    protected ScopedBackgroundService(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        _stragglers = new StragglerLog(logger, () => Volatile.Read(ref _scope));
    }

    /// <summary>
    /// The options of the service's scope, read once as it starts. Default: named after the service's type, with a
    /// <see cref="TaskScopeOptions.StragglerTimeout"/> of 5 seconds.
    /// </summary>
    /// <remarks>The scope makes no span (tracing): a span as long as the host would hold everything the service
    /// traces in one trace. Leak tracking lists it.</remarks>
    protected virtual TaskScopeOptions ScopeOptions => new() { Name = GetType().Name, StragglerTimeout = TimeSpan.FromSeconds(5) };

    /// <summary>Stops the scope in two phases and waits until the work and every child have ended.</summary>
    /// <param name="cancellationToken">The host's shutdown token: when it fires (the shutdown timeout has passed),
    /// the scope's <see cref="TaskScope.Token"/> does.</param>
    /// <returns>A task that completes when nothing of the service runs any more. It never faults: a failure of the
    /// work is <see cref="BackgroundService.ExecuteTask"/>'s, which the host reports.</returns>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        if (ExecuteTask is not { } work)
        {
            return; // never started
        }

        _stragglers.Start();
        try
        {
            _stopToken = cancellationToken;
            Volatile.Write(ref _stopRequested, 1);
            Interlocked.MemoryBarrier(); // the write above before the read below; the work's start does the converse
            if (Volatile.Read(ref _scope) is { } scope)
            {
                ApplyStop(scope);
            }

            await work.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            _stragglers.Stop();
            _stopRegistration.Dispose(); // the work has ended: whoever applied the stop has finished
        }
    }

    /// <summary>
    /// Stops the service's work if the host never did (its scope is cancelled, as by the host's shutdown token),
    /// waits until the work and every child have ended, then runs <see cref="DisposeAsyncCore"/> once.
    /// </summary>
    /// <returns>A task that completes when nothing of the service runs any more and its resources are released. It
    /// faults only with what <see cref="DisposeAsyncCore"/> threw.</returns>
    public async ValueTask DisposeAsync()
    {
        Dispose(); // cancels the token the work's scope takes as its outer token
        if (ExecuteTask is { } work)
        {
            await work.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await DisposeAsyncCore().ConfigureAwait(false);
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Releases what the service holds for its work (an <c>HttpClient</c>, a connection), once the work and every
    /// child have ended: called once, by the first <see cref="DisposeAsync"/>, whether or not the service ever started.
    /// </summary>
    /// <returns>The release. The default does nothing.</returns>
    protected virtual ValueTask DisposeAsyncCore() => ValueTask.CompletedTask;

    /// <summary>
    /// The service's work, run as the body of its scope once the host starts it: start children with
    /// <see cref="TaskScope.Start(Func{CancellationToken, Task}, string?)"/> (named, for straggler reports), watch
    /// <see cref="TaskScope.Stopping"/> to finish the current unit of work when the host stops, and
    /// <see cref="TaskScope.Token"/> for the hard end.
    /// </summary>
    /// <param name="scope">The service's scope.</param>
    /// <returns>The work; the scope then waits for its children.</returns>
    protected abstract Task ExecuteAsync(TaskScope scope);

    /// <inheritdoc/>
    /// <remarks>Sealed: the work is <see cref="ExecuteAsync(TaskScope)"/>, and the host's stopping token is replaced by
    /// the scope's two tokens.</remarks>
    /// <param name="stoppingToken">Cancelled only when the service is disposed without being stopped: the scope is
    /// then cancelled from outside.</param>
    protected sealed override Task ExecuteAsync(CancellationToken stoppingToken) =>
        TaskScope.RunAsync(
            scope =>
            {
                Volatile.Write(ref _scope, scope);
                Interlocked.MemoryBarrier(); // the converse of StopAsync's: one of the two sees the other
                if (Volatile.Read(ref _stopRequested) == 1)
                {
                    ApplyStop(scope); // the stop came before the scope
                }

                return ExecuteAsync(scope);
            },
            stoppingToken,
            ScopeOptions.WithoutSpan()); // as long as the host: see HostedTaskScope's remarks

    // Stopping now; Token when the host's shutdown token fires (or now, if it has).
    private void ApplyStop(TaskScope scope)
    {
        if (Interlocked.Exchange(ref _stopApplied, 1) == 0)
        {
            scope.Stop(Timeout.InfiniteTimeSpan);
            _stopRegistration = _stopToken.UnsafeRegister(static state => ((TaskScope)state!).Cancel(), scope);
        }
    }
}
