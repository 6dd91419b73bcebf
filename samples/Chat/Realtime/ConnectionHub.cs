using System.Collections.Concurrent;
using System.Net.WebSockets;
using AsyncScopes;
using AsyncScopes.Hosting;

namespace Chat.Realtime;

/// <summary>
/// Every WebSocket connection of the service, by room. The connections are children of a
/// <see cref="HostedTaskScope"/> (<see cref="RealtimeServices.Connections"/>), each named after its client, so that
/// none outlives the service.
/// </summary>
/// <remarks>
/// The host stops that scope as it begins to stop, before the server stops (which would otherwise wait for the
/// connections): its <see cref="TaskScope.Stopping"/> token asks every connection to close with 1001, and its
/// <see cref="TaskScope.Token"/>, when the host's shutdown timeout has passed, aborts those still open. A connection
/// still running 5 seconds after that ignores cancellation somewhere: the scope logs it by name, and the host still
/// waits for it.
/// </remarks>
internal sealed partial class ConnectionHub : IAsyncDisposable
{
    private const string ShuttingDown = "The server is shutting down.";

    // Broadcasts read a room's members without a lock; joins and leaves replace the array under _membershipLock.
    private readonly ConcurrentDictionary<string, ChatConnection[]> _rooms = new(StringComparer.Ordinal);
    private readonly Lock _membershipLock = new();
    private readonly HostedTaskScope _connections;
    private readonly TaskScope _scope;
    private readonly ILogger<ConnectionHub> _logger;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;

    /// <param name="connections">The scope the connections run in.</param>
    /// <param name="logger">Where connections that end badly are logged.</param>
    public ConnectionHub([FromKeyedServices(RealtimeServices.Connections)] HostedTaskScope connections, ILogger<ConnectionHub> logger)
    {
        _connections = connections;
        _scope = connections.Scope;
        _logger = logger;
    }

    /// <summary>The connections open now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>True once the host began to stop: new connections are refused.</summary>
    public bool IsStopping => _scope.Stopping.IsCancellationRequested;

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

    /// <summary>Aborts the connections if the host never stopped them, and waits for them: the chat service does so
    /// before it closes the store (<see cref="ChatService"/>). The container disposes the scope too; the second time
    /// does nothing.</summary>
    public ValueTask DisposeAsync() => _connections.DisposeAsync();

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
}
