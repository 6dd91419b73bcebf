using System.Data.Common;
using AsyncScopes;
using Npgsql;

namespace Chat.Storage;

/// <summary>
/// A PostgreSQL database that several nodes may share. Each node has its writer, its readers and one listening
/// connection. Batches of messages take their turns across all nodes (a transaction-scoped advisory lock), so that
/// ids are committed in increasing order; each batch's transaction notifies every node, which then reads the new
/// messages in id order (<see cref="PostgresMessageFeed"/>). A node claims the outbox jobs it works on until a time, so that no
/// two nodes work on one job at once, and a node that dies leaves claims that run out.
/// </summary>
internal sealed class PostgresProvider : DatabaseProvider
{
    // The advisory locks of the service: this class, and a number for each use within it.
    private const string SchemaLock = "pg_advisory_xact_lock(1130914164, 1)";
    private const string MessageTurnLock = "pg_advisory_xact_lock(1130914164, 2)";

    private readonly NpgsqlDataSource _writers;
    private readonly NpgsqlDataSource _readers;
    private readonly NpgsqlDataSource _listeners;
    private readonly string _description;

    public PostgresProvider(string connectionString)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString)
        {
            // The store's AsyncPools own the connections: their sizes are the limits, their DiscardOn destroys a
            // connection that broke, and their disposal closes what they hold. Npgsql's pool would keep each
            // "closed" connection open behind them and hand it out again, unseen by either pool.
            Pooling = false,
        };
        settings.ApplicationName ??= "chat";
        _description = $"PostgreSQL {settings.Database ?? settings.Username} on {settings.Host}:{settings.Port}";
        _writers = NpgsqlDataSource.Create(settings.ConnectionString);

        // A reader cannot write by mistake, whatever the statement.
        var readers = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        readers.Options = $"{readers.Options} -c default_transaction_read_only=on".Trim();
        _readers = NpgsqlDataSource.Create(readers.ConnectionString);

        // The listening connection is idle for as long as nobody writes: a keepalive query finds a dead one.
        var listeners = new NpgsqlConnectionStringBuilder(settings.ConnectionString) { ApplicationName = $"{settings.ApplicationName} listener" };
        if (listeners.KeepAlive == 0)
        {
            listeners.KeepAlive = 30;
        }

        _listeners = NpgsqlDataSource.Create(listeners.ConnectionString);
    }

    public override string Description => _description;

    public override bool IsShared => true;

    // Times are milliseconds since 1970 as in SQLite, so that the store reads and writes them the same way on both,
    // from the node's clock.
    public override string Schema => $"""
        CREATE TABLE IF NOT EXISTS messages (
            id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            room TEXT NOT NULL,
            name TEXT NOT NULL,
            text TEXT NOT NULL,
            at   BIGINT NOT NULL);
        CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
        CREATE TABLE IF NOT EXISTS webhooks (
            id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            room       TEXT NOT NULL,
            url        TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE (room, url));
        CREATE TABLE IF NOT EXISTS outbox (
            id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            webhook_id      BIGINT NOT NULL,
            message_id      BIGINT NOT NULL,
            url             TEXT NOT NULL,
            payload         TEXT NOT NULL,
            state           TEXT NOT NULL DEFAULT '{OutboxState.Pending}',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL,
            last_error      TEXT,
            done_at         BIGINT,
            claimed_by      TEXT,
            claimed_until   BIGINT,
            trace_parent    TEXT);
        DO $$
        BEGIN
            -- The columns a database of an earlier version lacks. Altered only when missing, and before any index
            -- below: ALTER TABLE locks the table against everything, which running nodes' claims would otherwise
            -- meet at every start, or deadlock with behind the index's lock.
            IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                           WHERE table_schema = current_schema() AND table_name = 'webhooks' AND column_name = 'secret') THEN
                ALTER TABLE webhooks ADD COLUMN secret TEXT;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                           WHERE table_schema = current_schema() AND table_name = 'outbox' AND column_name = 'trace_parent') THEN
                ALTER TABLE outbox ADD COLUMN trace_parent TEXT;
            END IF;
        END $$;
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at, id);
        CREATE TABLE IF NOT EXISTS rooms (
            name            TEXT PRIMARY KEY,
            messages        BIGINT NOT NULL,
            last_message_id BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS settings (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL);
        """;

    // Held from before a batch's first id is drawn until its commit: a batch's ids are drawn only after every earlier
    // batch is committed (or rolled back), so the committed ids only ever grow, on every node. Batches are written one
    // at a time across the nodes, as they are by SQLite's one writer.
    public override string? TakeMessageTurnSql => $"SELECT {MessageTurnLock}";

    // Sent at the commit, never on a rollback; listeners receive notifications in commit order.
    public override string? AnnounceMessageSql => $"SELECT pg_notify('{PostgresMessageFeed.MessagesChannel}', @jobs::text)";

    // SKIP LOCKED: two nodes claiming at once take different jobs instead of waiting for each other.
    public override string ClaimDueJobsSql => $"""
        WITH due AS (
            SELECT id FROM outbox
            WHERE state = '{OutboxState.Pending}' AND next_attempt_at <= @now AND (claimed_until IS NULL OR claimed_until <= @now)
                AND NOT EXISTS (
                    SELECT 1 FROM jsonb_array_elements_text(CAST(@busy AS jsonb)) AS busy(prefix)
                    WHERE starts_with(url, busy.prefix))
            ORDER BY next_attempt_at, id LIMIT @limit
            FOR UPDATE SKIP LOCKED),
        claimed AS (
            UPDATE outbox SET claimed_by = @node, claimed_until = @until
            FROM due WHERE outbox.id = due.id
            RETURNING outbox.id, outbox.message_id, outbox.url, outbox.payload, outbox.attempts, outbox.next_attempt_at,
                outbox.webhook_id, outbox.trace_parent)
        SELECT claimed.id, message_id, claimed.url, payload, attempts, next_attempt_at, webhooks.secret, trace_parent
        FROM claimed LEFT JOIN webhooks ON webhooks.id = claimed.webhook_id
        """;

    public override string NextDueSql => $"""
        SELECT MIN(GREATEST(next_attempt_at, COALESCE(claimed_until, 0))) FROM outbox
        WHERE state = '{OutboxState.Pending}' AND GREATEST(next_attempt_at, COALESCE(claimed_until, 0)) > @now
        """;

    // A node whose claim ran out, and was taken over, records nothing: the job's state is the other node's to write.
    public override string RecordAttemptSql => $"""
        UPDATE outbox SET state = @state, attempts = @attempts, last_error = @error,
            next_attempt_at = COALESCE(@next, next_attempt_at),
            done_at = CASE WHEN @state = '{OutboxState.Pending}' THEN NULL ELSE @now END,
            claimed_by = NULL, claimed_until = NULL
        WHERE id = @id AND claimed_by = @node AND state = '{OutboxState.Pending}'
        """;

    public override string ReleaseClaimsSql => $"""
        UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = @node AND state = '{OutboxState.Pending}';
        NOTIFY {PostgresMessageFeed.OutboxChannel};
        """;

    /// <summary>What is wrong with <paramref name="connectionString"/> as the setting
    /// <c>Database:ConnectionString</c>; null when nothing is.</summary>
    public static string? CheckConnectionString(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return "Database:ConnectionString is required when Database:Provider is Postgres (Host=...;Database=...;Username=...;Password=...).";
        }

        try
        {
            return string.IsNullOrWhiteSpace(new NpgsqlConnectionStringBuilder(connectionString).Host)
                ? "Database:ConnectionString must name the server: Host=..."
                : null;
        }
        catch (ArgumentException e)
        {
            return $"Database:ConnectionString is not a PostgreSQL connection string: {e.Message}";
        }
    }

    public override async ValueTask<DbConnection> OpenAsync(bool writer, CancellationToken cancellationToken) =>
        await (writer ? _writers : _readers).OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    public override Task CreateSchemaAsync(DbConnection connection, CancellationToken cancellationToken) =>
        Transactions.Begin(connection).WithAsync(async (transaction, ct) =>
        {
            // Two nodes starting at once would both find a table missing and both create it: one of them would fail.
            await using DbCommand command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"SELECT {SchemaLock}; {Schema}";
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);

    public override bool IsConnectionFault(Exception exception) => exception switch
    {
        // The server reported an error on a sound connection (a constraint, a missing table), unless the error is
        // that the connection is over (class 08) or the server is shutting it down (57P: terminated, crashed).
        PostgresException postgres => postgres.SqlState.StartsWith("08", StringComparison.Ordinal)
            || postgres.SqlState.StartsWith("57P", StringComparison.Ordinal),

        // Not the server's answer: the connection failed (I/O, protocol, timeout), and Npgsql takes it for broken.
        NpgsqlException => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsConnectionFault),
        _ => false,
    };

    // The connection's faults, and the server's own troubles rather than a statement's: insufficient resources (53,
    // a full disk, no memory), system errors (58, I/O), internal errors (XX, corrupt data), a statement cancelled
    // by the server (57014, a statement timeout), and a lock the transaction lost or waited too long for
    // (40: a deadlock, a serialization failure; 55P03: a lock timeout), which is the moment's, not the statement's.
    public override bool IsInfrastructureFault(Exception exception) => exception switch
    {
        PostgresException postgres => IsConnectionFault(postgres)
            || postgres.SqlState.StartsWith("40", StringComparison.Ordinal)
            || postgres.SqlState == "55P03"
            || postgres.SqlState.StartsWith("53", StringComparison.Ordinal)
            || postgres.SqlState.StartsWith("58", StringComparison.Ordinal)
            || postgres.SqlState.StartsWith("XX", StringComparison.Ordinal)
            || postgres.SqlState == "57014",
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsInfrastructureFault),
        _ => IsConnectionFault(exception),
    };

    public override async Task<MessageFeed> StartFeedAsync(
        IDatabaseEvents events, TimeProvider time, ILoggerFactory loggers, CancellationToken cancellationToken) =>
        await PostgresMessageFeed.StartAsync(_listeners, events, time, loggers.CreateLogger<PostgresMessageFeed>(), cancellationToken)
            .ConfigureAwait(false);

    public override async ValueTask DisposeAsync()
    {
        await _listeners.DisposeAsync().ConfigureAwait(false);
        await _readers.DisposeAsync().ConfigureAwait(false);
        await _writers.DisposeAsync().ConfigureAwait(false);
    }
}
