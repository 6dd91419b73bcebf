using System.Collections.Concurrent;
using System.Net.WebSockets;
using AsyncScopes;

namespace Chat.Realtime;

/// <summary>
/// Every WebSocket connection of the service, by room. The hub's <see cref="TaskScope"/> owns the connections: each
/// runs as one of its children, named after its client, so stopping the hub waits for every connection to end, and no
/// connection outlives the service.
/// </summary>
/// <remarks>
/// Stopping is the scope's two-phase stop (<see cref="TaskScope.Stop(TimeSpan)"/>): its
/// <see cref="TaskScope.Stopping"/> token asks every connection to close with 1001, and its
/// <see cref="TaskScope.Token"/>, at the end of the grace, aborts those still open. A connection still running
/// <see cref="StragglerTimeout"/> after that ignores cancellation somewhere: it is logged by name, and still awaited.
/// </remarks>
internal sealed partial class ConnectionHub : IAsyncDisposable
{
    /// <summary>How long a connection may still run after it was aborted before it is logged as a straggler.</summary>
    public static readonly TimeSpan StragglerTimeout = TimeSpan.FromSeconds(5);

    private const string ShuttingDown = "The server is shutting down.";

    // Broadcasts read a room's members without a lock; joins and leaves replace the array under _membershipLock.
    private readonly ConcurrentDictionary<string, ChatConnection[]> _rooms = new(StringComparer.Ordinal);
    private readonly Lock _membershipLock = new();
    private readonly TaskScope _scope;
    private readonly ILogger<ConnectionHub> _logger;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;
    private volatile bool _stopping;

    /// <param name="time">The clock of the grace and of the straggler reports.</param>
    /// <param name="logger">Where connections that end badly, and stragglers, are logged.</param>
    public ConnectionHub(TimeProvider time, ILogger<ConnectionHub> logger)
    {
        _scope = new TaskScope(new TaskScopeOptions { Name = "chat connections", TimeProvider = time, StragglerTimeout = StragglerTimeout });
        _logger = logger;
    }

    /// <summary>The connections open now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>True once <see cref="StopAsync"/> began: new connections are refused.</summary>
    public bool IsStopping => _stopping;

    /// <summary>Completes at the next change of <see cref="Count"/>. Read it before reading <see cref="Count"/>, so
    /// that no change falls between the two.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>
    /// Runs <paramref name="connection"/> as a child of the hub until it ends, with it a member of its room meanwhile.
    /// </summary>
    /// <returns>A task that completes when the connection has ended, true; or at once, false, when the hub no longer
    /// runs connections (it is stopping), so that the caller closes the socket itself. It never faults: how the
    /// connection ended is logged.</returns>
    public async Task<bool> RunAsync(ChatConnection connection)
    {
        Task run;
        try
        {
            run = _scope.Start(ct => RunMemberAsync(connection, ct), $"Connection of {connection.Name} in {connection.Room}");
        }
        catch (InvalidOperationException)
        {
            return false; // the hub closed between the caller's check of IsStopping and here
        }

        // Cancelled, without having run, when the hub was already aborting; the child itself never faults.
        await run.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return !run.IsCanceled;
    }

    /// <summary>Queues <paramref name="frame"/> for every client in <paramref name="room"/>, without waiting for any.</summary>
    /// <returns>The clients it was queued for; a client whose queue was full is being closed with 1008.</returns>
    public int Broadcast(string room, ReadOnlyMemory<byte> frame)
    {
        if (!_rooms.TryGetValue(room, out ChatConnection[]? members))
        {
            return 0;
        }

        int queued = 0;
        foreach (ChatConnection member in members)
        {
            if (member.TryPost(frame))
            {
                queued++;
            }
        }

        return queued;
    }

    /// <summary>The connections open in <paramref name="room"/> now.</summary>
    public IReadOnlyList<ChatConnection> Members(string room) =>
        _rooms.TryGetValue(room, out ChatConnection[]? members) ? members : [];

    /// <summary>The rooms with clients now, and how many.</summary>
    public IReadOnlyDictionary<string, int> Rooms() =>
        _rooms.ToDictionary(room => room.Key, room => room.Value.Length, StringComparer.Ordinal);

    /// <summary>
    /// Refuses new connections, closes every open one with 1001, and waits for them to end: a two-phase stop. When
    /// <paramref name="grace"/> has passed, or <paramref name="cancellationToken"/> fires first, the connections still
    /// open are aborted, and awaited; one still running <see cref="StragglerTimeout"/> after that is logged by name.
    /// </summary>
    /// <param name="grace">How long connections have to close (the host's shutdown timeout).</param>
    /// <param name="cancellationToken">The host's shutdown token: it ends the grace at once.</param>
    public async Task StopAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        _stopping = true;
        ScopeDiagnostics.Straggler += OnStraggler;
        try
        {
            // Stopping fires: every connection, and any that joins during the grace, is asked to close (RunMemberAsync).
            _scope.Stop(grace);
            using (cancellationToken.UnsafeRegister(static scope => ((TaskScope)scope!).Cancel(), _scope))
            {
                // A stop ends the join quietly, and the children never fault.
                await _scope.JoinAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        finally
        {
            ScopeDiagnostics.Straggler -= OnStraggler;
        }

        LogStopped(_logger, _scope.Token.IsCancellationRequested ? "some aborted at the end of the grace" : "all closed");
    }

    /// <summary>Aborts whatever <see cref="StopAsync"/> did not close, and waits for it.</summary>
    public ValueTask DisposeAsync()
    {
        _stopping = true;
        return _scope.DisposeAsync();
    }

    private async Task RunMemberAsync(ChatConnection connection, CancellationToken cancellationToken)
    {
        Join(connection);
        try
        {
            // At once when the hub is stopping already.
            using CancellationTokenRegistration closeOnStop = _scope.Stopping.UnsafeRegister(
                static member => ((ChatConnection)member!).RequestClose(WebSocketCloseStatus.EndpointUnavailable, ShuttingDown),
                connection);
            await connection.RunAsync(cancellationToken).ConfigureAwait(false);
            LogClosed(_logger, connection.Room, connection.Name, connection.CloseStatus);
        }
        catch (Exception e) when (IsClientGone(e))
        {
            LogGone(_logger, connection.Room, connection.Name, e.Message);
        }
        catch (Exception e)
        {
            // Logged, not rethrown: one broken connection must not cancel the others.
            LogFailed(_logger, e, connection.Room, connection.Name);
        }
        finally
        {
            Leave(connection);
        }
    }

    // The ways a connection ends without the server being at fault: the client vanished or went silent, or the hub
    // aborted it.
    private static bool IsClientGone(Exception exception) =>
        exception is WebSocketException or IOException or TimeoutException or OperationCanceledException;

    private void Join(ChatConnection connection)
    {
        lock (_membershipLock)
        {
            ChatConnection[] members = _rooms.TryGetValue(connection.Room, out ChatConnection[]? current) ? current : [];
            _rooms[connection.Room] = [.. members, connection];
            _count++;
        }

        SignalChanged();
    }

    private void Leave(ChatConnection connection)
    {
        lock (_membershipLock)
        {
            ChatConnection[] members = _rooms[connection.Room];
            if (members.Length == 1)
            {
                _rooms.TryRemove(connection.Room, out _); // an empty room holds nothing
            }
            else
            {
                _rooms[connection.Room] = Array.FindAll(members, member => !ReferenceEquals(member, connection));
            }

            _count--;
        }

        SignalChanged();
    }

    private void SignalChanged() =>
        Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))
            .TrySetResult();

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection of {Name} in {Room} closed ({Status}).")]
    private static partial void LogClosed(ILogger logger, string room, string name, WebSocketCloseStatus? status);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection of {Name} in {Room} ended: {Reason}")]
    private static partial void LogGone(ILogger logger, string room, string name, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection of {Name} in {Room} failed.")]
    private static partial void LogFailed(ILogger logger, Exception exception, string room, string name);

    // The static event serves every scope of the process: this hub logs its own.
    private void OnStraggler(object? sender, ScopeStragglerEventArgs e)
    {
        if (ReferenceEquals(sender, _scope))
        {
            LogStraggler(_logger, e.ChildName, e.Waited);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection} still runs {Waited} after it was aborted: something in it ignores cancellation, and holds up the shutdown.")]
    private static partial void LogStraggler(ILogger logger, string? connection, TimeSpan waited);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connections stopped: {Outcome}.")]
    private static partial void LogStopped(ILogger logger, string outcome);
}
