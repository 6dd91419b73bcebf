using System.Data.Common;

namespace Chat.Storage;

/// <summary>
/// What differs between the databases the store runs on, and only that: how a connection is opened, the schema, the
/// few statements that are not the same, and which exceptions leave a connection broken. <see cref="ChatStore"/> runs
/// everything else the same way on each.
/// </summary>
/// <remarks>
/// Statements take named parameters (<c>@now</c>); a provider's statement may leave out some of the parameters the
/// store binds, never use others.
/// </remarks>
internal abstract class DatabaseProvider : IAsyncDisposable
{
    /// <summary>The provider for <paramref name="options"/>, which are valid.</summary>
    public static DatabaseProvider Create(DatabaseOptions options) => options.IsPostgres
        ? new PostgresProvider(options.ConnectionString!)
        : new SqliteProvider(options.Path);

    /// <summary>What the log says the database is; never a password.</summary>
    public abstract string Description { get; }

    /// <summary>
    /// True when other nodes may use the same database at once. Then a node takes no more outbox jobs than its workers
    /// can start, and learns of the messages every node commits from the database itself
    /// (<see cref="PostgresMessageFeed"/>).
    /// </summary>
    public abstract bool IsShared { get; }

    /// <summary>The tables and indexes, created when missing.</summary>
    public abstract string Schema { get; }

    /// <summary>
    /// Runs first in every batch's transaction of messages, or null: on a shared database it makes the transactions that
    /// store messages take their turns, so that ids are committed in increasing order.
    /// </summary>
    public abstract string? TakeMessageTurnSql { get; }

    /// <summary>Runs last in every batch's transaction of messages, with <c>@jobs</c> (the outbox rows it wrote), or
    /// null: on a shared database it tells every node, once the transaction commits, that messages were stored.</summary>
    public abstract string? AnnounceMessageSql { get; }

    /// <summary>
    /// Claims the pending jobs due at <c>@now</c>, at most <c>@limit</c>, the earliest due first, for node <c>@node</c>
    /// until <c>@until</c>, leaving out the jobs under a claim that has not run out and those whose URL starts with one
    /// of the prefixes of <c>@busy</c> (a JSON array of strings); returns them as <c>id, message_id,
    /// url, payload, attempts, next_attempt_at, secret, trace_parent</c> (the webhook's signing secret, NULL when it has
    /// none; the W3C trace context of the message's commit, NULL when it was not traced), in any order. Runs on the writer's connection, which sees every
    /// attempt recorded.
    /// </summary>
    public abstract string ClaimDueJobsSql { get; }

    /// <summary>When the earliest pending job that is not due at <c>@now</c> (or is claimed by a node until after it)
    /// becomes free to take; NULL when there is none.</summary>
    public abstract string NextDueSql { get; }

    /// <summary>
    /// Records the outcome of an attempt on job <c>@id</c>: <c>@state</c>, <c>@attempts</c>, <c>@error</c>,
    /// <c>@next</c> (the next attempt's time, or NULL), at <c>@now</c>; only while node <c>@node</c> holds the job's
    /// claim, which it gives up.
    /// </summary>
    public abstract string RecordAttemptSql { get; }

    /// <summary>Gives up the claims of node <c>@node</c> on jobs still pending, and tells the other nodes if any.</summary>
    public abstract string ReleaseClaimsSql { get; }

    /// <summary>Opens a connection: the writer's, or a reader's (which may be read-only).</summary>
    public abstract ValueTask<DbConnection> OpenAsync(bool writer, CancellationToken cancellationToken);

    /// <summary>Creates the <see cref="Schema"/> on the writer's connection, also when other nodes start at the same
    /// time.</summary>
    public abstract Task CreateSchemaAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>
    /// True when <paramref name="exception"/> (from a body, a commit or a rollback) may have left the connection
    /// broken or in an unknown state: its pool destroys it. Anything else, an error the server reported on a sound
    /// connection, a cancellation, a failure injected by a hook, leaves it usable, and it goes back to the pool.
    /// </summary>
    public abstract bool IsConnectionFault(Exception exception);

    /// <summary>
    /// True when <paramref name="exception"/>, thrown while one message of a batch was being written, is a failure of
    /// the database itself (the connection, the disk) rather than of that message's statements: then every message of
    /// the batch fails, instead of that one alone (<see cref="MessageWriter"/>). By default, a connection fault.
    /// </summary>
    public virtual bool IsInfrastructureFault(Exception exception) => IsConnectionFault(exception);

    /// <summary>Whether a pooled connection may be lent again: it is open (and, on SQLite, its file is still there).</summary>
    public virtual ValueTask<bool> IsUsableAsync(DbConnection connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult(connection.State == System.Data.ConnectionState.Open);

    /// <summary>Starts the feed of committed messages: where <see cref="IsShared"/>, one that follows every node's
    /// commits in the database; otherwise, the writer's own batches (<see cref="InProcessMessageFeed"/>).</summary>
    public virtual Task<MessageFeed> StartFeedAsync(
        IDatabaseEvents events, TimeProvider time, ILoggerFactory loggers, CancellationToken cancellationToken) =>
        Task.FromResult<MessageFeed>(new InProcessMessageFeed(events, loggers.CreateLogger<InProcessMessageFeed>()));

    /// <summary>Releases what the provider holds besides the connections, which the store's pools close.</summary>
    public abstract ValueTask DisposeAsync();
}
