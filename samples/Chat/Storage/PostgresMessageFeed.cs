using AsyncScopes;
using Npgsql;

namespace Chat.Storage;

/// <summary>
/// The messages every node commits to a shared PostgreSQL database, in id order, each once: one connection of its own
/// listens for the notification that each batch's transaction sends at its commit, and reads the messages after
/// the last one it had. The loop runs as a child of a <see cref="TaskScope"/>; when the connection fails it connects
/// again after a doubling wait, and reads what was committed meanwhile before it listens on.
/// </summary>
/// <remarks>
/// Ids are committed in increasing order (<see cref="PostgresProvider.TakeMessageTurnSql"/>), so "every message after
/// the last one read" is never a message committed later with a smaller id: reading by id, the feed skips none and
/// repeats none, whatever notifications it missed.
/// </remarks>
internal sealed partial class PostgresMessageFeed : MessageFeed
{
    /// <summary>Notified by each batch's transaction, with the number of outbox jobs it wrote.</summary>
    public const string MessagesChannel = "chat_messages";

    /// <summary>Notified when a node gives up its claims on outbox jobs.</summary>
    public const string OutboxChannel = "chat_outbox";

    private const int PageSize = 500;
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestRetry = TimeSpan.FromSeconds(30);

    private readonly NpgsqlDataSource _source;
    private readonly IDatabaseEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TaskScope _scope = new(new TaskScopeOptions { Name = "chat listener" });

    // Only the loop reads and writes these: Npgsql raises Notification within the loop's own reads and waits.
    private long _lastId;
    private bool _notified;
    private bool _jobsAnnounced;
    private int _serverProcessId;

    private PostgresMessageFeed(NpgsqlDataSource source, IDatabaseEvents events, TimeProvider time, ILogger logger)
        : base(events, logger)
    {
        _source = source;
        _events = events;
        _time = time;
        _logger = logger;
    }

    /// <summary>The server process of the listening connection (<c>pg_backend_pid()</c>): whom to terminate to
    /// see the feed reconnect.</summary>
    public int ServerProcessId => Volatile.Read(ref _serverProcessId);

    /// <summary>
    /// Connects and starts listening, from the last message committed now: what was committed before is history,
    /// read on request. Returns once listening (the loop is started with <see cref="TaskScope.StartAsync"/>, and says
    /// when it is ready), so that no message this node writes afterwards can be missed, and the service does not start
    /// before it.
    /// </summary>
    /// <exception cref="Exception">What the first connection threw: the loop retries only once it has listened.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired first: the loop is
    /// cancelled, and nothing is left open.</exception>
    public static async Task<PostgresMessageFeed> StartAsync(
        NpgsqlDataSource source, IDatabaseEvents events, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        var feed = new PostgresMessageFeed(source, events, time, logger);
        try
        {
            await feed._scope.StartAsync(feed.RunAsync, "listening connection", cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await feed.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return feed;
    }

    /// <summary>Nothing: the batch's notification brings its messages back, among every node's.</summary>
    public override void Committed(IReadOnlyList<StoredMessage> messages)
    {
    }

    /// <summary>Stops listening and waits for the loop to end.</summary>
    protected override async ValueTask StopAsync()
    {
        _scope.Cancel();
        await _scope.DisposeAsync().ConfigureAwait(false);
    }

    // The loop: ready once its first connection listens and knows where the history ends.
    private async Task RunAsync(Action listening, CancellationToken cancellationToken)
    {
        NpgsqlConnection connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // After LISTEN: a message committed in between is both notified and counted here, and skipped as read.
            await using var command = new NpgsqlCommand("SELECT COALESCE(MAX(id), 0) FROM messages", connection);
            _lastId = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        LogListening(_logger, _lastId);
        listening();
        await ListenAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    private async Task ListenAsync(NpgsqlConnection? connection, CancellationToken cancellationToken)
    {
        TimeSpan retry = FirstRetry;
        while (true)
        {
            try
            {
                if (connection is null)
                {
                    connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
                    LogReconnected(_logger);

                    // Jobs announced while the feed was away went unheard.
                    _events.JobsAvailable();
                }

                retry = FirstRetry;
                await FollowAsync(connection, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // A stop that raced with the failure ends the wait below at once.
                LogLost(_logger, e, retry);
            }
            finally
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                    connection = null;
                }
            }

            await Task.Delay(retry, _time, cancellationToken).ConfigureAwait(false);
            retry = retry * 2 < LongestRetry ? retry * 2 : LongestRetry;
        }
    }

    // Returns only by throwing: the connection failed, or the feed is stopping.
    private async Task FollowAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Cleared before the read: a notification that arrives during it sends the loop to read again, not to wait.
            _notified = false;
            await ReadCommittedAsync(connection, cancellationToken).ConfigureAwait(false);
            if (_jobsAnnounced)
            {
                _jobsAnnounced = false;
                _events.JobsAvailable();
            }

            if (!_notified)
            {
                await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ReadCommittedAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        int read;
        do
        {
            await using var command = new NpgsqlCommand(
                "SELECT id, room, name, text, at FROM messages WHERE id > @after ORDER BY id LIMIT @limit", connection);
            command.Parameters.AddWithValue("after", _lastId);
            command.Parameters.AddWithValue("limit", PageSize);
            read = 0;
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                StoredMessage message = ChatStore.ReadMessage(reader);
                _lastId = message.Id;
                read++;
                Publish(message);
            }
        }
        while (read == PageSize);
    }

    private async Task<NpgsqlConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        NpgsqlConnection connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            connection.Notification += OnNotification;
            await using var command = new NpgsqlCommand($"LISTEN {MessagesChannel}; LISTEN {OutboxChannel}", connection);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _serverProcessId, connection.ProcessID);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        _notified = true;
        if (e.Channel == OutboxChannel || e.Payload != "0")
        {
            _jobsAnnounced = true;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The listening connection to the database failed; connecting again in {Retry}.")]
    private static partial void LogLost(ILogger logger, Exception exception, TimeSpan retry);

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening to the database for every node's messages after message {LastId}.")]
    private static partial void LogListening(ILogger logger, long lastId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening to the database again; reading the messages committed meanwhile.")]
    private static partial void LogReconnected(ILogger logger);
}
