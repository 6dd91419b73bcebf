using System.Collections.Concurrent;
using System.Net.WebSockets;
using AsyncScopes;

namespace Chat.Realtime;

/// <summary>
/// Every WebSocket connection of the service, by room. The hub's <see cref="TaskScope"/> owns the connections: each
/// runs as one of its children, so stopping the hub waits for every connection to end, and no connection outlives
/// the service.
/// </summary>
internal sealed partial class ConnectionHub : IAsyncDisposable
{
    private static readonly TaskScopeOptions ScopeOptions = new() { Name = "chat connections" };

    // Broadcasts read a room's members without a lock; joins and leaves replace the array under _membershipLock.
    private readonly ConcurrentDictionary<string, ChatConnection[]> _rooms = new(StringComparer.Ordinal);
    private readonly Lock _membershipLock = new();
    private readonly TaskScope _scope = new(ScopeOptions);
    private readonly ILogger<ConnectionHub> _logger;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;
    private volatile bool _stopping;

    public ConnectionHub(ILogger<ConnectionHub> logger)
    {
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
            run = _scope.Start(ct => RunMemberAsync(connection, ct));
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
    /// Refuses new connections, closes every open one with 1001, and waits for them to end. When
    /// <paramref name="cancellationToken"/> fires first, the connections still open are aborted, and awaited.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Under the lock that joins take: a connection joining now either is in this snapshot or sees the flag.
        List<ChatConnection> open;
        lock (_membershipLock)
        {
            _stopping = true;
            open = [.. _rooms.Values.SelectMany(members => members)];
        }

        foreach (ChatConnection connection in open)
        {
            connection.RequestClose(WebSocketCloseStatus.EndpointUnavailable, "The server is shutting down.");
        }

        using (cancellationToken.UnsafeRegister(static scope => ((TaskScope)scope!).Cancel(), _scope))
        {
            // Cancelled when the token aborted the stragglers; the children never fault.
            await _scope.JoinAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        LogStopped(_logger, _scope.JoinAsync().IsCanceled ? "some aborted at the shutdown deadline" : "all closed");
    }

    /// <summary>Aborts whatever <see cref="StopAsync"/> did not close, and waits for it.</summary>
    public ValueTask DisposeAsync()
    {
        _stopping = true;
        return _scope.DisposeAsync();
    }

    private async Task RunMemberAsync(ChatConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            if (Join(connection))
            {
                connection.RequestClose(WebSocketCloseStatus.EndpointUnavailable, "The server is shutting down.");
            }

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

    // True when the hub is stopping: the connection has joined too late to be in StopAsync's snapshot.
    private bool Join(ChatConnection connection)
    {
        bool stopping;
        lock (_membershipLock)
        {
            ChatConnection[] members = _rooms.TryGetValue(connection.Room, out ChatConnection[]? current) ? current : [];
            _rooms[connection.Room] = [.. members, connection];
            _count++;
            stopping = _stopping;
        }

        SignalChanged();
        return stopping;
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Connections stopped: {Outcome}.")]
    private static partial void LogStopped(ILogger logger, string outcome);
}
