using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Chat.Storage;

/// <summary>
/// One SQLite file in WAL mode, used by one node: one writer connection and read-only connections that never wait for
/// it. Nothing is announced: the node is alone. Outbox jobs are claimed through the writer, as on PostgreSQL, so that
/// the feeder never takes a job from a reader's snapshot that predates the record of its last attempt.
/// </summary>
internal sealed class SqliteProvider : DatabaseProvider
{
    private readonly string _path;
    private int _created;

    public SqliteProvider(string path)
    {
        _path = Path.GetFullPath(path);
    }

    public override string Description => $"SQLite {_path}";

    public override bool IsShared => false;

    public override string Schema => $"""
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
            secret     TEXT,
            UNIQUE (room, url));
        CREATE TABLE IF NOT EXISTS outbox (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            webhook_id      INTEGER NOT NULL,
            message_id      INTEGER NOT NULL,
            url             TEXT NOT NULL,
            payload         TEXT NOT NULL,
            state           TEXT NOT NULL DEFAULT '{OutboxState.Pending}',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error      TEXT,
            done_at         INTEGER,
            claimed_by      TEXT,
            claimed_until   INTEGER,
            trace_parent    TEXT);
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at, id);
        CREATE TABLE IF NOT EXISTS rooms (
            name            TEXT PRIMARY KEY,
            messages        INTEGER NOT NULL,
            last_message_id INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS settings (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL);
        """;

    // The one writer connection already makes messages take their turns, and the node has nobody to tell.
    public override string? TakeMessageTurnSql => null;

    public override string? AnnounceMessageSql => null;

    // On the writer, which sees every recorded attempt; the one writer connection keeps two claims apart.
    public override string ClaimDueJobsSql => $"""
        UPDATE outbox SET claimed_by = @node, claimed_until = @until
        WHERE id IN (
            SELECT id FROM outbox
            WHERE state = '{OutboxState.Pending}' AND next_attempt_at <= @now AND (claimed_until IS NULL OR claimed_until <= @now)
                AND NOT EXISTS (SELECT 1 FROM json_each(@busy) AS busy WHERE substr(url, 1, length(busy.value)) = busy.value)
            ORDER BY next_attempt_at, id LIMIT @limit)
        RETURNING id, message_id, url, payload, attempts, next_attempt_at,
            (SELECT secret FROM webhooks WHERE webhooks.id = outbox.webhook_id), trace_parent
        """;

    public override string NextDueSql => $"""
        SELECT MIN(MAX(next_attempt_at, COALESCE(claimed_until, 0))) FROM outbox
        WHERE state = '{OutboxState.Pending}' AND MAX(next_attempt_at, COALESCE(claimed_until, 0)) > @now
        """;

    public override string RecordAttemptSql => $"""
        UPDATE outbox SET state = @state, attempts = @attempts, last_error = @error,
            next_attempt_at = COALESCE(@next, next_attempt_at),
            done_at = CASE WHEN @state = '{OutboxState.Pending}' THEN NULL ELSE @now END,
            claimed_by = NULL, claimed_until = NULL
        WHERE id = @id AND claimed_by = @node AND state = '{OutboxState.Pending}'
        """;

    public override string ReleaseClaimsSql =>
        $"UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = @node AND state = '{OutboxState.Pending}'";

    // Pooling=False: the store's pools own the connections; the provider's own pool would keep them open after disposal.
    public override async ValueTask<DbConnection> OpenAsync(bool writer, CancellationToken cancellationToken)
    {
        // The file is created once, by the first writer: a writer opened after that and finding it gone fails, rather
        // than writing to a new empty file.
        string mode = !writer ? "ReadOnly" : Interlocked.Exchange(ref _created, 1) == 0 ? "ReadWriteCreate" : "ReadWrite";
        var connection = new SqliteConnection($"Data Source={_path};Mode={mode};Pooling=False");
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // WAL: readers see the last commit while the writer writes. NORMAL: a commit survives a crash of the
            // process (not of the machine) without a sync per commit.
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

    // A connection to a file that was deleted goes on reading and writing the deleted file, and what it writes is lost:
    // it is destroyed, and the next one fails to open.
    public override ValueTask<bool> IsUsableAsync(DbConnection connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult(connection.State == System.Data.ConnectionState.Open && File.Exists(_path));

    // The columns that a file of an earlier version lacks: added (SQLite has no ADD COLUMN IF NOT EXISTS).
    private static readonly (string Table, string Column, string Type)[] AddedColumns =
    [
        ("outbox", "claimed_by", "TEXT"),
        ("outbox", "claimed_until", "INTEGER"),
        ("webhooks", "secret", "TEXT"),
        ("outbox", "trace_parent", "TEXT"),
    ];

    // The node is alone, so the claims of an earlier run (which a crash left) are void.
    public override async Task CreateSchemaAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, Schema, cancellationToken).ConfigureAwait(false);
        foreach ((string table, string column, string type) in AddedColumns)
        {
            await using DbCommand exists = connection.CreateCommand();
            exists.CommandText = $"SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'";
            if ((long)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! == 0)
            {
                await ExecuteAsync(connection, $"ALTER TABLE {table} ADD COLUMN {column} {type}", cancellationToken).ConfigureAwait(false);
            }
        }

        await ExecuteAsync(
            connection,
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL",
            cancellationToken).ConfigureAwait(false);
    }

    // A SqliteException (from the body, the commit or the rollback) may leave the connection in any state: destroy it.
    public override bool IsConnectionFault(Exception exception) => exception switch
    {
        SqliteException => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsConnectionFault),
        _ => false,
    };

    // Every SqliteException destroys the connection (above), but most are one statement's: a constraint, a missing
    // table. These are the file's or the machine's: I/O, a full disk, a corrupt or missing file, no memory, and a lock
    // held too long by another process.
    public override bool IsInfrastructureFault(Exception exception) => exception switch
    {
        SqliteException sqlite => (sqlite.SqliteErrorCode & 0xFF) is SQLitePCL.raw.SQLITE_IOERR or SQLitePCL.raw.SQLITE_FULL
            or SQLitePCL.raw.SQLITE_CORRUPT or SQLitePCL.raw.SQLITE_NOTADB or SQLitePCL.raw.SQLITE_CANTOPEN
            or SQLitePCL.raw.SQLITE_NOMEM or SQLitePCL.raw.SQLITE_BUSY or SQLitePCL.raw.SQLITE_READONLY,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsInfrastructureFault),
        _ => false,
    };

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static async Task ExecuteAsync(DbConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using DbCommand command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
