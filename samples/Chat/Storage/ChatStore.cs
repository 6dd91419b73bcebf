using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using AsyncScopes;
using static Chat.Storage.Sql;

namespace Chat.Storage;

/// <summary>
/// Messages, webhooks and the webhook outbox, in one SQLite file or in a PostgreSQL database that several nodes share
/// (<see cref="DatabaseProvider"/> holds what differs). One writer connection (an <see cref="AsyncPool{T}"/> of size 1,
/// so writers queue first-in first-out instead of failing when the database is busy) and a few read-only connections
/// that never wait for it: the pools come from the container (<see cref="StorageServices"/>).
/// </summary>
internal sealed class ChatStore : IAsyncDisposable
{
    private readonly DatabaseProvider _provider;
    private readonly AsyncPool<DbConnection> _writer;
    private readonly AsyncPool<DbConnection> _readers;
    private readonly TimeProvider _time;
    private readonly IMessageWriteHook? _hook;
    private MessageFeed? _feed;
    private MessageWriter? _messages;

    private ChatStore(
        DatabaseProvider provider, AsyncPool<DbConnection> writer, AsyncPool<DbConnection> readers, TimeProvider time, IMessageWriteHook? hook)
    {
        _provider = provider;
        _writer = writer;
        _readers = readers;
        _time = time;
        _hook = hook;
    }

    /// <summary>What the database is, for the log.</summary>
    public string Description => _provider.Description;

    /// <summary>This node's name in the outbox's claims: the machine, the process, and a random part for each start.</summary>
    public string NodeId { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{RandomNumberGenerator.GetHexString(8, lowercase: true)}";

    /// <summary>True when other nodes may share the database (PostgreSQL): see <see cref="DatabaseProvider.IsShared"/>.</summary>
    public bool IsShared => _provider.IsShared;

    /// <summary>The server process of the connection that listens for other nodes' messages; null on SQLite.</summary>
    public int? ListenerServerProcessId => (_feed as PostgresMessageFeed)?.ServerProcessId;

    /// <summary>The writer pool's counters (one connection at most).</summary>
    public PoolStatistics WriterStatistics => _writer.Statistics;

    /// <summary>The reader pool's counters.</summary>
    public PoolStatistics ReaderStatistics => _readers.Statistics;

    /// <summary>
    /// Opens the store, creating the tables through the writer before any reader opens the database; on a shared
    /// database, returns once it listens for the messages of every node.
    /// </summary>
    /// <param name="provider">The database.</param>
    /// <param name="writer">The writer pool (<see cref="StorageServices.Writer"/>): one connection.</param>
    /// <param name="readers">The pool of read-only connections (<see cref="StorageServices.Readers"/>).</param>
    /// <param name="time">The clock of message times and of the outbox.</param>
    /// <param name="hook">Runs inside every batch's transaction, after each message's rows, before the commit.</param>
    /// <param name="events">Hears of every committed message, and of outbox jobs to work on.</param>
    /// <param name="webhookPayload">The body of a message's webhook deliveries, written into its outbox jobs.</param>
    /// <param name="writerAcquireTimeout">The writer pool's acquire timeout, which also bounds how long a message waits
    /// for its batch.</param>
    /// <param name="loggers">For the feed's loop.</param>
    /// <param name="cancellationToken">Cancels the opening.</param>
    /// <remarks>The store does not own the provider and the pools: the container does (<see cref="StorageServices"/>).</remarks>
    public static async Task<ChatStore> OpenAsync(
        DatabaseProvider provider,
        AsyncPool<DbConnection> writer,
        AsyncPool<DbConnection> readers,
        TimeProvider time,
        IMessageWriteHook? hook,
        IDatabaseEvents events,
        Func<StoredMessage, string> webhookPayload,
        TimeSpan writerAcquireTimeout,
        ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        var store = new ChatStore(provider, writer, readers, time, hook);
        try
        {
            await store._writer.UseAsync(store._provider.CreateSchemaAsync, cancellationToken).ConfigureAwait(false);
            await store._writer.UseAsync(SummarizeRoomsAsync, cancellationToken).ConfigureAwait(false);
            store._feed = await store._provider.StartFeedAsync(events, time, loggers, cancellationToken).ConfigureAwait(false);
            store._messages = new MessageWriter(provider, writer, time, hook, store._feed, events, webhookPayload, writerAcquireTimeout);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Stores a message and, in the same transaction, one outbox job per webhook of its room, in the writer's next
    /// batch (<see cref="MessageWriter"/>). Once the batch committed, the message is handed to the
    /// <see cref="IDatabaseEvents"/> with its post, in id order with every other message, by the feed: on SQLite as soon
    /// as the batches before it were; on a shared database when the node reads it back among every node's
    /// (<see cref="PostgresMessageFeed"/>), which may be after the returned task completed.
    /// </summary>
    /// <returns>The stored message, once its batch committed.</returns>
    /// <exception cref="TimeoutException">Through the task: the message waited for the writer for longer than its
    /// acquire timeout.</exception>
    /// <exception cref="InvalidOperationException">Through the task: the store is closing.</exception>
    /// <exception cref="OperationCanceledException">Through the task: the message was withdrawn
    /// (<see cref="PostedMessage.TryWithdraw"/>) before a batch took it: it is not stored.</exception>
    /// <remarks>When anything fails before the commit, the message is not stored, and the events never hear of it as
    /// this node's; on a shared database, a message whose commit's outcome stayed unknown may still reach them as
    /// anyone's (without its post) if it did commit.</remarks>
    public Task<StoredMessage> AppendMessageAsync(PostedMessage message)
    {
        Messages.Post(message);
        return message.Stored;
    }

    /// <summary>A page of a room's history, oldest first: up to <paramref name="limit"/> messages with ids below
    /// <paramref name="before"/> (the newest ones when it is null).</summary>
    public Task<IReadOnlyList<StoredMessage>> GetMessagesAsync(
        string room, long? before, int limit, CancellationToken cancellationToken) =>
        _readers.UseAsync<IReadOnlyList<StoredMessage>>(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, """
                SELECT id, room, name, text, at FROM messages
                WHERE room = @room AND id < @before ORDER BY id DESC LIMIT @limit
                """);
            Bind(command, "@room", room);
            Bind(command, "@before", before ?? long.MaxValue);
            Bind(command, "@limit", limit);
            var page = new List<StoredMessage>(Math.Min(limit, 256));
            await using (DbDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    page.Add(ReadMessage(reader));
                }
            }

            page.Reverse();
            return page;
        }, cancellationToken);

    /// <summary>Up to <paramref name="limit"/> rooms that have messages, by name, after <paramref name="after"/> (from
    /// the first when null): read from the rooms' summaries, which the writer keeps with every message.</summary>
    public Task<IReadOnlyList<RoomSummary>> GetRoomsAsync(string? after, int limit, CancellationToken cancellationToken) =>
        _readers.UseAsync<IReadOnlyList<RoomSummary>>(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, """
                SELECT name, messages, last_message_id FROM rooms WHERE name > @after ORDER BY name LIMIT @limit
                """);
            Bind(command, "@after", after ?? "");
            Bind(command, "@limit", limit);
            var rooms = new List<RoomSummary>(Math.Min(limit, 256));
            await using (DbDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    rooms.Add(new RoomSummary(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
                }
            }

            return rooms;
        }, cancellationToken);

    /// <summary>Registers <paramref name="url"/> for <paramref name="room"/> with the key of its signatures, unless the
    /// room has <paramref name="maxPerRoom"/> webhooks already; registering a URL again returns the existing
    /// registration, whose key stays as it was.</summary>
    /// <returns>The registration (without its secret) and whether it is new; no registration when the room is full.</returns>
    /// <remarks>The cap holds for the writes of one node, which take their turns; on a shared database, nodes that
    /// register for the same room at the same moment may each add one past it.</remarks>
    public Task<(WebhookRegistration? Webhook, bool Created)> AddWebhookAsync(
        string room, string url, string secret, int maxPerRoom, CancellationToken cancellationToken) =>
        _writer.UseAsync((connection, useToken) =>
            Transactions.Begin(connection).WithAsync(async Task<(WebhookRegistration? Webhook, bool Created)> (DbTransaction transaction, CancellationToken ct) =>
            {
                if (await FindWebhookAsync(connection, transaction, room, url, ct).ConfigureAwait(false) is { } existing)
                {
                    return (existing, false);
                }

                await using (DbCommand count = Command(connection, transaction, "SELECT COUNT(*) FROM webhooks WHERE room = @room"))
                {
                    Bind(count, "@room", room);
                    if (Convert.ToInt64(await count.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) >= maxPerRoom)
                    {
                        return (null, false);
                    }
                }

                // Another node may register the same URL at the same moment: then its registration is the one.
                bool created;
                await using (DbCommand insert = Command(connection, transaction, """
                    INSERT INTO webhooks (room, url, created_at, secret) VALUES (@room, @url, @now, @secret)
                    ON CONFLICT (room, url) DO NOTHING
                    """))
                {
                    Bind(insert, "@room", room);
                    Bind(insert, "@url", url);
                    Bind(insert, "@secret", secret);
                    Bind(insert, "@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
                    created = await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
                }

                return (await FindWebhookAsync(connection, transaction, room, url, ct).ConfigureAwait(false), created);
            }, useToken),
            cancellationToken);

    /// <summary>Every webhook registration, by id.</summary>
    public Task<IReadOnlyList<WebhookRegistration>> GetWebhooksAsync(CancellationToken cancellationToken) =>
        _readers.UseAsync<IReadOnlyList<WebhookRegistration>>(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, "SELECT id, room, url, created_at FROM webhooks ORDER BY id");
            var webhooks = new List<WebhookRegistration>();
            await using (DbDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    webhooks.Add(ReadWebhook(reader));
                }
            }

            return webhooks;
        }, cancellationToken);

    /// <summary>Removes a registration and, in the same transaction, marks its pending deliveries failed: nothing more
    /// is sent to it (an attempt in flight still ends, and its outcome is not recorded).</summary>
    /// <returns>Whether it existed.</returns>
    public Task<bool> RemoveWebhookAsync(long id, CancellationToken cancellationToken) =>
        _writer.UseAsync((connection, useToken) =>
            Transactions.Begin(connection).WithAsync(async (transaction, ct) =>
            {
                await using (DbCommand jobs = Command(connection, transaction, $"""
                    UPDATE outbox SET state = '{OutboxState.Failed}', last_error = 'the webhook was removed', done_at = @now,
                        claimed_by = NULL, claimed_until = NULL
                    WHERE webhook_id = @id AND state = '{OutboxState.Pending}'
                    """))
                {
                    Bind(jobs, "@id", id);
                    Bind(jobs, "@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
                    await jobs.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await using DbCommand command = Command(connection, transaction, "DELETE FROM webhooks WHERE id = @id");
                Bind(command, "@id", id);
                return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
            }, useToken),
            cancellationToken);

    /// <summary>
    /// Claims the pending outbox jobs due at <paramref name="now"/> for this node until <paramref name="claimUntil"/>,
    /// earliest due first, leaving out those to the destinations of <paramref name="busy"/> (URL prefixes, such as
    /// <c>https://example.com:8443/</c>): no one takes them again before then unless this node records their attempts or releases
    /// them first. Jobs under another claim are not returned. Runs on the writer, which sees every attempt recorded, so
    /// a job is never returned with an attempt count older than the database's.
    /// </summary>
    public Task<IReadOnlyList<OutboxJob>> ClaimDueJobsAsync(
        DateTimeOffset now, DateTimeOffset claimUntil, int limit, IReadOnlyCollection<string> busy, CancellationToken cancellationToken) =>
        _writer.UseAsync<IReadOnlyList<OutboxJob>>(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, _provider.ClaimDueJobsSql);
            Bind(command, "@now", now.ToUnixTimeMilliseconds());
            Bind(command, "@limit", limit);
            Bind(command, "@until", claimUntil.ToUnixTimeMilliseconds());
            Bind(command, "@node", NodeId);
            Bind(command, "@busy", JsonSerializer.Serialize([.. busy], ChatJson.Default.StringArray));
            var jobs = new List<(long DueAt, OutboxJob Job)>();
            await using (DbDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var job = new OutboxJob(
                        reader.GetInt64(0),
                        reader.GetInt64(1),
                        reader.GetString(2),
                        reader.GetString(3),
                        reader.GetInt32(4),
                        reader.IsDBNull(6) ? null : reader.GetString(6),
                        reader.IsDBNull(7) ? null : reader.GetString(7));
                    jobs.Add((reader.GetInt64(5), job));
                }
            }

            return [.. jobs.OrderBy(claimed => claimed.DueAt).ThenBy(claimed => claimed.Job.Id).Select(claimed => claimed.Job)];
        }, cancellationToken);

    /// <summary>When the earliest pending job that cannot be taken at <paramref name="now"/> (not due yet, or claimed by
    /// a node until later) can be; null when there is none.</summary>
    public Task<DateTimeOffset?> GetNextDueAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        _readers.UseAsync(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, _provider.NextDueSql);
            Bind(command, "@now", now.ToUnixTimeMilliseconds());
            object? next = await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
            return next is long milliseconds ? DateTimeOffset.FromUnixTimeMilliseconds(milliseconds) : (DateTimeOffset?)null;
        }, cancellationToken);

    /// <summary>Marks a job delivered: it is never sent again.</summary>
    /// <returns>False when nothing was recorded: this node no longer held the job's claim (on a shared database, it had
    /// run out and another node has taken the job over).</returns>
    public Task<bool> MarkDeliveredAsync(long jobId, int attempts, CancellationToken cancellationToken) =>
        RecordAttemptAsync(jobId, OutboxState.Delivered, attempts, null, null, cancellationToken);

    /// <summary>Records a failed attempt: the job is tried again at <paramref name="nextAttemptAt"/>, or, when that is
    /// null, marked failed and never tried again.</summary>
    /// <returns>False when nothing was recorded, as for <see cref="MarkDeliveredAsync"/>.</returns>
    public Task<bool> RecordFailedAttemptAsync(
        long jobId, int attempts, DateTimeOffset? nextAttemptAt, string error, CancellationToken cancellationToken) =>
        RecordAttemptAsync(jobId, nextAttemptAt is null ? OutboxState.Failed : OutboxState.Pending, attempts, nextAttemptAt, error, cancellationToken);

    /// <summary>Gives up this node's claim on one job, which stays as it was: due, with no attempt counted.</summary>
    public Task ReleaseClaimAsync(long jobId, CancellationToken cancellationToken) =>
        _writer.UseAsync(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, $"""
                UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = @id AND claimed_by = @node AND state = '{OutboxState.Pending}'
                """);
            Bind(command, "@id", jobId);
            Bind(command, "@node", NodeId);
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>Gives up this node's claims on the jobs it did not finish, so that other nodes (or this one's next
    /// start) take them at once rather than when the claims run out.</summary>
    public Task ReleaseClaimsAsync(CancellationToken cancellationToken) =>
        _writer.UseAsync(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, _provider.ReleaseClaimsSql);
            Bind(command, "@node", NodeId);
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>The value of setting <paramref name="name"/>, stored as <paramref name="value"/> when it has none yet
    /// (on a shared database, by whichever node comes first).</summary>
    /// <returns>The stored value, and whether it is <paramref name="value"/>, stored by this call.</returns>
    public Task<(string Value, bool Added)> GetOrAddSettingAsync(string name, string value, CancellationToken cancellationToken) =>
        _writer.UseAsync(async (connection, ct) =>
        {
            await using (DbCommand insert = Command(
                connection, null, "INSERT INTO settings (name, value) VALUES (@name, @value) ON CONFLICT (name) DO NOTHING"))
            {
                Bind(insert, "@name", name);
                Bind(insert, "@value", value);
                if (await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1)
                {
                    return (value, true);
                }
            }

            await using DbCommand select = Command(connection, null, "SELECT value FROM settings WHERE name = @name");
            Bind(select, "@name", name);
            return ((string)(await select.ExecuteScalarAsync(ct).ConfigureAwait(false))!, false);
        }, cancellationToken);

    /// <summary>Writes a row through the writer and reads it back through a reader: what every request needs of the
    /// database.</summary>
    /// <exception cref="TimeoutException">The writer stayed busy for longer than its acquire timeout.</exception>
    /// <exception cref="InvalidOperationException">The reader did not read back what the writer wrote.</exception>
    public async Task ProbeAsync(CancellationToken cancellationToken)
    {
        string written = RandomNumberGenerator.GetHexString(16, lowercase: true);
        await _writer.UseAsync(async (connection, ct) =>
        {
            await using DbCommand upsert = Command(connection, null, """
                INSERT INTO settings (name, value) VALUES ('health_probe', @value)
                ON CONFLICT (name) DO UPDATE SET value = excluded.value
                """);
            Bind(upsert, "@value", written);
            await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);

        string? read = await _readers.UseAsync(async (connection, ct) =>
        {
            await using DbCommand select = Command(connection, null, "SELECT value FROM settings WHERE name = 'health_probe'");
            return (string?)await select.ExecuteScalarAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        if (read != written)
        {
            throw new InvalidOperationException("A reader did not see what the writer had just committed.");
        }
    }

    /// <summary>The outbox by state.</summary>
    public Task<OutboxCounts> GetOutboxCountsAsync(CancellationToken cancellationToken) =>
        _readers.UseAsync(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, $"""
                SELECT COUNT(*) FILTER (WHERE state = '{OutboxState.Pending}'), COUNT(*) FILTER (WHERE state = '{OutboxState.Delivered}'),
                       COUNT(*) FILTER (WHERE state = '{OutboxState.Failed}')
                FROM outbox
                """);
            await using DbDataReader reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return new OutboxCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }, cancellationToken);

    /// <summary>Stores the messages already posted, then stops publishing and listening to the other nodes; the pools
    /// and the provider are the container's.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_messages is not null)
        {
            await _messages.DisposeAsync().ConfigureAwait(false);
        }

        if (_feed is not null)
        {
            await _feed.DisposeAsync().ConfigureAwait(false);
        }
    }

    private MessageWriter Messages => _messages ?? throw new InvalidOperationException("The store is not open.");

    /// <summary>A message from the columns <c>id, room, name, text, at</c>.</summary>
    internal static StoredMessage ReadMessage(DbDataReader reader) => new(
        reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), FromUnixMilliseconds(reader.GetInt64(4)));

    // A database of an earlier version has messages and no summaries: they are made once, from the messages.
    private static async Task SummarizeRoomsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using DbCommand summarize = Command(connection, null, """
            INSERT INTO rooms (name, messages, last_message_id)
            SELECT room, COUNT(*), MAX(id) FROM messages WHERE NOT EXISTS (SELECT 1 FROM rooms) GROUP BY room
            ON CONFLICT (name) DO NOTHING
            """);
        await summarize.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private Task<bool> RecordAttemptAsync(
        long jobId, string state, int attempts, DateTimeOffset? nextAttemptAt, string? error, CancellationToken cancellationToken) =>
        _writer.UseAsync(async (connection, ct) =>
        {
            await using DbCommand command = Command(connection, null, _provider.RecordAttemptSql);
            Bind(command, "@state", state);
            Bind(command, "@attempts", attempts);
            Bind(command, "@error", error, DbType.String);
            Bind(command, "@next", nextAttemptAt?.ToUnixTimeMilliseconds(), DbType.Int64);
            Bind(command, "@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            Bind(command, "@id", jobId);
            Bind(command, "@node", NodeId);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, cancellationToken);

    private static async Task<WebhookRegistration?> FindWebhookAsync(
        DbConnection connection, DbTransaction transaction, string room, string url, CancellationToken cancellationToken)
    {
        await using DbCommand select = Command(
            connection, transaction, "SELECT id, room, url, created_at FROM webhooks WHERE room = @room AND url = @url");
        Bind(select, "@room", room);
        Bind(select, "@url", url);
        await using DbDataReader reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadWebhook(reader) : null;
    }

    private static WebhookRegistration ReadWebhook(DbDataReader reader) =>
        new(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), FromUnixMilliseconds(reader.GetInt64(3)));

    private static DateTime FromUnixMilliseconds(long milliseconds) => DateTimeOffset.FromUnixTimeMilliseconds(milliseconds).UtcDateTime;
}
