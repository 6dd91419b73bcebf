using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Chat.Storage;

/// <summary>
/// One SQLite file in WAL mode, used by one node: one writer connection and read-only connections that never wait for
/// it. Nothing is claimed and nothing announced: the node is alone.
/// </summary>
internal sealed class SqliteProvider : DatabaseProvider
{
    private readonly string _path;

    public SqliteProvider(string path)
    {
        _path = Path.GetFullPath(path);
    }

    public override string Description => $"SQLite {_path}";

    public override bool IsShared => false;

    public override string Schema => """
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

    // The one writer connection already makes messages take their turns, and the node has nobody to tell.
    public override string? TakeMessageTurnSql => null;

    public override string? AnnounceMessageSql => null;

    // Read, not claimed: the node's dispatcher keeps the jobs it works on apart by itself.
    public override string ClaimDueJobsSql => """
        SELECT id, message_id, url, payload, attempts FROM outbox
        WHERE state = 'pending' AND next_attempt_at <= @now ORDER BY next_attempt_at, id LIMIT @limit
        """;

    public override string NextDueSql =>
        "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND next_attempt_at > @now";

    public override string RecordAttemptSql => """
        UPDATE outbox SET state = @state, attempts = @attempts, last_error = @error,
            next_attempt_at = COALESCE(@next, next_attempt_at),
            done_at = CASE WHEN @state = 'pending' THEN NULL ELSE @now END
        WHERE id = @id
        """;

    public override string? ReleaseClaimsSql => null;

    // Pooling=False: the store's pools own the connections; the provider's own pool would keep them open after disposal.
    public override async ValueTask<DbConnection> OpenAsync(bool writer, CancellationToken cancellationToken)
    {
        string mode = writer ? "ReadWriteCreate" : "ReadOnly";
        var connection = new SqliteConnection($"Data Source={_path};Mode={mode};Pooling=False");
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

    public override Task CreateSchemaAsync(DbConnection connection, CancellationToken cancellationToken) =>
        ExecuteAsync(connection, Schema, cancellationToken);

    // A SqliteException (from the body, the commit or the rollback) may leave the connection in any state: destroy it.
    public override bool IsConnectionFault(Exception exception) => exception switch
    {
        SqliteException => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsConnectionFault),
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
