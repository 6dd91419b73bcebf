using System.Data;
using System.Data.Common;
using System.Text.Json;
using AsyncScopes;
using Microsoft.Data.Sqlite;

namespace Chat.Storage;

/// <summary>
/// Messages, webhooks and the webhook outbox in one SQLite file, in WAL mode: one writer connection (an
/// <see cref="AsyncPool{T}"/> of size 1, so writers queue first-in first-out instead of failing with SQLITE_BUSY) and a
/// few read-only connections that never wait for it.
/// </summary>
internal sealed class ChatStore : IAsyncDisposable
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS messages (
            id   INTEGER PRIMARY KEY AUTOINCREMENT,
            room TEXT NOT NULL,
            name TEXT NOT NULL,
            text TEXT NOT NULL,
            at   INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
        CREATE TABLE IF NOT EXISTS webhooks (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            room       TEXT NOT NULL,
            url        TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (room, url));
        CREATE TABLE IF NOT EXISTS outbox (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            webhook_id      INTEGER NOT NULL,
            message_id      INTEGER NOT NULL,
            url             TEXT NOT NULL,
            payload         TEXT NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error      TEXT,
            done_at         INTEGER);
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at, id);
        """;

    private readonly AsyncPool<SqliteConnection> _writer;
    private readonly AsyncPool<SqliteConnection> _readers;
    private readonly TimeProvider _time;
    private readonly IMessageWriteHook? _hook;

    private ChatStore(DatabaseOptions options, TimeProvider time, IMessageWriteHook? hook)
    {
        _time = time;
        _hook = hook;
        string path = Path.GetFullPath(options.Path);

        // Pooling=False: these pools own the connections; the provider's own pool would keep them open after disposal.
        _writer = new AsyncPool<SqliteConnection>(
            ct => OpenAsync($"Data Source={path};Mode=ReadWriteCreate;Pooling=False", writer: true, ct),
            new AsyncPoolOptions<SqliteConnection>
            {
                Name = "chat-writer",
                MaxSize = 1,
                AcquireTimeout = options.WriterAcquireTimeout,
                Validate = IsOpen,
                DiscardOn = IsConnectionFault,
                DrainTimeout = TimeSpan.FromSeconds(5),
            });
        _readers = new AsyncPool<SqliteConnection>(
            ct => OpenAsync($"Data Source={path};Mode=ReadOnly;Pooling=False", writer: false, ct),
            new AsyncPoolOptions<SqliteConnection>
            {
                Name = "chat-readers",
                MaxSize = options.Readers,
                IdleTimeout = TimeSpan.FromMinutes(5),
                Validate = IsOpen,
                DiscardOn = IsConnectionFault,
                DrainTimeout = TimeSpan.FromSeconds(5),
            });
    }

    /// <summary>The writer pool's counters (one connection at most).</summary>
    public PoolStatistics WriterStatistics => _writer.Statistics;

    /// <summary>The reader pool's counters.</summary>
    public PoolStatistics ReaderStatistics => _readers.Statistics;

    /// <summary>Opens the store, creating the file and its tables through the writer before any reader opens it.</summary>
    public static async Task<ChatStore> OpenAsync(
        DatabaseOptions options, TimeProvider time, IMessageWriteHook? hook, CancellationToken cancellationToken)
    {
        var store = new ChatStore(options, time, hook);
        try
        {
            await store._writer.UseAsync((connection, ct) => ExecuteAsync(connection, Schema, ct), cancellationToken)
                .ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Stores a message and, in the same transaction, one outbox job per webhook of its room. Then, once committed and
    /// while the writer is still held, calls <paramref name="committed"/>: what it does for one message happens before
    /// it does anything for the next, so broadcasts go out in id order.
    /// </summary>
    /// <returns>The stored message and the number of outbox jobs written.</returns>
    /// <exception cref="TimeoutException">The writer stayed busy for longer than its acquire timeout.</exception>
    /// <remarks>When anything fails before the commit, the transaction is rolled back and nothing is stored;
    /// <paramref name="committed"/> is not called.</remarks>
    public Task<(StoredMessage Message, int Jobs)> AppendMessageAsync(
        string room, string name, string text, Action<StoredMessage> committed, CancellationToken cancellationToken) =>
        _writer.UseAsync(async (connection, useToken) =>
        {
            (StoredMessage Message, int Jobs) written = await Transactions.Begin(connection).WithAsync(
                (transaction, ct) => WriteMessageAsync(connection, transaction, room, name, text, ct), useToken)
                .ConfigureAwait(false);
            committed(written.Message);
            return written;
        }, cancellationToken);

    /// <summary>A page of a room's history, oldest first: up to <paramref name="limit"/> messages with ids below
    /// <paramref name="before"/> (the newest ones when it is null).</summary>
    public Task<IReadOnlyList<StoredMessage>> GetMessagesAsync(
        string room, long? before, int limit, CancellationToken cancellationToken) =>
        _readers.UseAsync<IReadOnlyList<StoredMessage>>(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = """
                SELECT id, room, name, text, at FROM messages
                WHERE room = @room AND id < @before ORDER BY id DESC LIMIT @limit
                """;
            command.Parameters.AddWithValue("@room", room);
            command.Parameters.AddWithValue("@before", before ?? long.MaxValue);
            command.Parameters.AddWithValue("@limit", limit);
            var page = new List<StoredMessage>(Math.Min(limit, 256));
            await using (SqliteDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    page.Add(new StoredMessage(
                        reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                        FromUnixMilliseconds(reader.GetInt64(4))));
                }
            }

            page.Reverse();
            return page;
        }, cancellationToken);

    /// <summary>The rooms that have messages, by name.</summary>
    public Task<IReadOnlyList<RoomSummary>> GetRoomsAsync(CancellationToken cancellationToken) =>
        _readers.UseAsync<IReadOnlyList<RoomSummary>>(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT room, COUNT(*), MAX(id) FROM messages GROUP BY room ORDER BY room";
            var rooms = new List<RoomSummary>();
            await using (SqliteDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    rooms.Add(new RoomSummary(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
                }
            }

            return rooms;
        }, cancellationToken);

    /// <summary>Registers <paramref name="url"/> for <paramref name="room"/>; registering it again returns the existing
    /// registration.</summary>
    /// <returns>The registration, and whether it is new.</returns>
    public Task<(WebhookRegistration Webhook, bool Created)> AddWebhookAsync(
        string room, string url, CancellationToken cancellationToken) =>
        _writer.UseAsync((connection, useToken) =>
            Transactions.Begin(connection).WithAsync(async (transaction, ct) =>
            {
                await using SqliteCommand insert = Command(connection, transaction, """
                    INSERT INTO webhooks (room, url, created_at) VALUES (@room, @url, @now)
                    ON CONFLICT (room, url) DO NOTHING
                    """);
                insert.Parameters.AddWithValue("@room", room);
                insert.Parameters.AddWithValue("@url", url);
                insert.Parameters.AddWithValue("@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
                bool created = await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;

                await using SqliteCommand select = Command(
                    connection, transaction, "SELECT id, room, url, created_at FROM webhooks WHERE room = @room AND url = @url");
                select.Parameters.AddWithValue("@room", room);
                select.Parameters.AddWithValue("@url", url);
                await using SqliteDataReader reader = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await reader.ReadAsync(ct).ConfigureAwait(false);
                return (ReadWebhook(reader), created);
            }, useToken),
            cancellationToken);

    /// <summary>Every webhook registration, by id.</summary>
    public Task<IReadOnlyList<WebhookRegistration>> GetWebhooksAsync(CancellationToken cancellationToken) =>
        _readers.UseAsync<IReadOnlyList<WebhookRegistration>>(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT id, room, url, created_at FROM webhooks ORDER BY id";
            var webhooks = new List<WebhookRegistration>();
            await using (SqliteDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    webhooks.Add(ReadWebhook(reader));
                }
            }

            return webhooks;
        }, cancellationToken);

    /// <summary>Removes a registration; its jobs already in the outbox are still delivered.</summary>
    /// <returns>Whether it existed.</returns>
    public Task<bool> RemoveWebhookAsync(long id, CancellationToken cancellationToken) =>
        _writer.UseAsync(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "DELETE FROM webhooks WHERE id = @id";
            command.Parameters.AddWithValue("@id", id);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, cancellationToken);

    /// <summary>Pending outbox jobs due at <paramref name="now"/>, earliest first.</summary>
    public Task<IReadOnlyList<OutboxJob>> GetDueJobsAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        _readers.UseAsync<IReadOnlyList<OutboxJob>>(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = """
                SELECT id, message_id, url, payload, attempts FROM outbox
                WHERE state = 'pending' AND next_attempt_at <= @now ORDER BY next_attempt_at, id LIMIT @limit
                """;
            command.Parameters.AddWithValue("@now", now.ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("@limit", limit);
            var jobs = new List<OutboxJob>();
            await using (SqliteDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    jobs.Add(new OutboxJob(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4)));
                }
            }

            return jobs;
        }, cancellationToken);

    /// <summary>When the earliest pending job that is not yet due becomes due; null when there is none.</summary>
    public Task<DateTimeOffset?> GetNextDueAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        _readers.UseAsync(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND next_attempt_at > @now";
            command.Parameters.AddWithValue("@now", now.ToUnixTimeMilliseconds());
            object? next = await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
            return next is long milliseconds ? DateTimeOffset.FromUnixTimeMilliseconds(milliseconds) : (DateTimeOffset?)null;
        }, cancellationToken);

    /// <summary>Marks a job delivered: it is never sent again.</summary>
    public Task MarkDeliveredAsync(long jobId, int attempts, CancellationToken cancellationToken) =>
        UpdateJobAsync(jobId, "delivered", attempts, null, null, cancellationToken);

    /// <summary>Records a failed attempt: the job is tried again at <paramref name="nextAttemptAt"/>, or, when that is
    /// null, marked failed and never tried again.</summary>
    public Task RecordFailedAttemptAsync(
        long jobId, int attempts, DateTimeOffset? nextAttemptAt, string error, CancellationToken cancellationToken) =>
        UpdateJobAsync(jobId, nextAttemptAt is null ? "failed" : "pending", attempts, nextAttemptAt, error, cancellationToken);

    /// <summary>The outbox by state.</summary>
    public Task<OutboxCounts> GetOutboxCountsAsync(CancellationToken cancellationToken) =>
        _readers.UseAsync(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = """
                SELECT COUNT(*) FILTER (WHERE state = 'pending'), COUNT(*) FILTER (WHERE state = 'delivered'),
                       COUNT(*) FILTER (WHERE state = 'failed')
                FROM outbox
                """;
            await using SqliteDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return new OutboxCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }, cancellationToken);

    /// <summary>Destroys the idle connections at once and the leased ones when they come back (within five seconds).</summary>
    public async ValueTask DisposeAsync()
    {
        await _readers.DisposeAsync().ConfigureAwait(false);
        await _writer.DisposeAsync().ConfigureAwait(false);
    }

    private async Task<(StoredMessage Message, int Jobs)> WriteMessageAsync(
        SqliteConnection connection, DbTransaction transaction, string room, string name, string text, CancellationToken ct)
    {
        DateTimeOffset now = _time.GetUtcNow();
        long at = now.ToUnixTimeMilliseconds();
        await using SqliteCommand insert = Command(connection, transaction, """
            INSERT INTO messages (room, name, text, at) VALUES (@room, @name, @text, @at) RETURNING id
            """);
        insert.Parameters.AddWithValue("@room", room);
        insert.Parameters.AddWithValue("@name", name);
        insert.Parameters.AddWithValue("@text", text);
        insert.Parameters.AddWithValue("@at", at);
        long id = (long)(await insert.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        var message = new StoredMessage(id, room, name, text, FromUnixMilliseconds(at));

        await using SqliteCommand outbox = Command(connection, transaction, """
            INSERT INTO outbox (webhook_id, message_id, url, payload, next_attempt_at)
            SELECT id, @message, url, @payload, @at FROM webhooks WHERE room = @room
            """);
        outbox.Parameters.AddWithValue("@message", id);
        outbox.Parameters.AddWithValue("@payload", JsonSerializer.Serialize(message, ChatJson.Default.StoredMessage));
        outbox.Parameters.AddWithValue("@at", at);
        outbox.Parameters.AddWithValue("@room", room);
        int jobs = await outbox.ExecuteNonQueryAsync(ct).ConfigureAwait(false);

        if (_hook is not null)
        {
            await _hook.OnWrittenAsync(message, transaction, ct).ConfigureAwait(false);
        }

        return (message, jobs);
    }

    private Task UpdateJobAsync(
        long jobId, string state, int attempts, DateTimeOffset? nextAttemptAt, string? error, CancellationToken cancellationToken) =>
        _writer.UseAsync(async (connection, ct) =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = """
                UPDATE outbox SET state = @state, attempts = @attempts, last_error = @error,
                    next_attempt_at = COALESCE(@next, next_attempt_at),
                    done_at = CASE WHEN @state = 'pending' THEN NULL ELSE @now END
                WHERE id = @id
                """;
            command.Parameters.AddWithValue("@state", state);
            command.Parameters.AddWithValue("@attempts", attempts);
            command.Parameters.AddWithValue("@error", (object?)error ?? DBNull.Value);
            command.Parameters.AddWithValue("@next", (object?)nextAttemptAt?.ToUnixTimeMilliseconds() ?? DBNull.Value);
            command.Parameters.AddWithValue("@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("@id", jobId);
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);

    private static SqliteCommand Command(SqliteConnection connection, DbTransaction transaction, string sql)
    {
        SqliteCommand command = connection.CreateCommand();
        command.Transaction = (SqliteTransaction)transaction;
        command.CommandText = sql;
        return command;
    }

    private static WebhookRegistration ReadWebhook(SqliteDataReader reader) =>
        new(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), FromUnixMilliseconds(reader.GetInt64(3)));

    private static DateTime FromUnixMilliseconds(long milliseconds) => DateTimeOffset.FromUnixTimeMilliseconds(milliseconds).UtcDateTime;

    private static async ValueTask<SqliteConnection> OpenAsync(string connectionString, bool writer, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // WAL: readers see the last commit while the writer writes. NORMAL: a commit survives a crash of the
            // process (not of the machine) without a sync per message.
            if (writer)
            {
                await ExecuteAsync(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", cancellationToken)
                    .ConfigureAwait(false);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false); // not in a pool yet: nobody else closes it
            throw;
        }
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static ValueTask<bool> IsOpen(SqliteConnection connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult(connection.State == ConnectionState.Open);

    // A SqliteException (from the body, the commit or the rollback) may leave the connection in any state: destroy it.
    // Anything else, a cancellation or a failure injected by a hook, leaves it sound: keep it.
    private static bool IsConnectionFault(Exception exception) => exception switch
    {
        SqliteException => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsConnectionFault),
        _ => false,
    };
}
