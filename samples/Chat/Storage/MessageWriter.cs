using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Threading.Channels;
using AsyncScopes;
using static Chat.Storage.Sql;

namespace Chat.Storage;

/// <summary>
/// Group commit: one loop stores the messages posted on this node, as many at a time as are waiting when it takes
/// its next batch (at most <see cref="MaxBatch"/>), in one transaction per batch on the writer connection. It never
/// waits for more to come: a batch is what queued while the previous one committed, so a lone message is written at
/// once and a busy node writes many per commit.
/// </summary>
/// <remarks>
/// <para>Each message gets its own id, outbox jobs and outcome. <see cref="PostedMessage.Stored"/> completes only
/// once its batch has committed, after the batch is handed to the <see cref="MessageFeed"/>, which acknowledges and
/// broadcasts it without holding the writer.</para>
/// <para>A message whose own statements fail (a database error on its rows, a failing <see cref="IMessageWriteHook"/>)
/// fails alone: the transaction is rolled back, that message is told it was not stored, and the others are written
/// again, in a new transaction on a connection the pool still trusts (so each failing message costs its batch one more
/// transaction: failures of single messages are rare, and a savepoint per message would add two statements per message
/// to every batch). A room whose summary fails fails its messages of the batch, the same way. A failure of the batch
/// as a whole (the writer busy past its acquire timeout, the turn, a fault of the database itself, see
/// <see cref="DatabaseProvider.IsInfrastructureFault"/>) fails every message of it.</para>
/// <para>When the commit itself fails, its outcome is learned again on a new connection: a batch that did commit is
/// stored for every message of it. So it is when the feed has begun to read it back meanwhile
/// (<see cref="MessageFeed.TryTakeBack"/>). Only when neither can tell are its senders told their messages were not
/// stored.</para>
/// <para>A message that waited for a batch longer than the writer's acquire timeout is not stored
/// (<see cref="TimeoutException"/>, as a write that waited for the writer that long), so that a node writing slower
/// than it is posted to tells its senders so rather than queueing without end.</para>
/// <para>A batch writes its messages with a <see cref="StatementBatch"/>: their rows, then their outbox jobs and one
/// summary per room, each in one round trip on PostgreSQL and with statements compiled once on SQLite.</para>
/// <para>On a shared database the batch takes the turn once and notifies once (<see cref="DatabaseProvider"/>), so
/// ids are committed in increasing order across nodes and every node reads the batch back in one go.</para>
/// </remarks>
internal sealed class MessageWriter : IAsyncDisposable
{
    /// <summary>The most messages in one transaction.</summary>
    public const int MaxBatch = 256;

    private const string InsertMessageSql = "INSERT INTO messages (room, name, text, at) VALUES (@room, @name, @text, @at) RETURNING id";

    // Every statement of a batch returns rows, so that the one that failed is known by its place (StatementBatch).
    private const string InsertJobsSql = """
        INSERT INTO outbox (webhook_id, message_id, url, payload, next_attempt_at, trace_parent)
        SELECT id, @message, url, @payload, @at, @trace FROM webhooks WHERE room = @room
        RETURNING id
        """;

    private const string CountInRoomSql = """
        INSERT INTO rooms (name, messages, last_message_id) VALUES (@room, @count, @last)
        ON CONFLICT (name) DO UPDATE SET messages = rooms.messages + excluded.messages, last_message_id = excluded.last_message_id
        RETURNING messages
        """;

    private readonly DatabaseProvider _provider;
    private readonly AsyncPool<DbConnection> _writer;
    private readonly TimeProvider _time;
    private readonly IMessageWriteHook? _hook;
    private readonly MessageFeed _feed;
    private readonly IDatabaseEvents _events;
    private readonly Func<StoredMessage, string> _webhookPayload;
    private readonly TimeSpan _maxWait;
    private readonly Channel<PostedMessage> _posted =
        Channel.CreateUnbounded<PostedMessage>(new UnboundedChannelOptions { SingleReader = true });

    private readonly TaskScope _scope = new(new TaskScopeOptions { Name = "chat writer" });

    /// <param name="provider">The database.</param>
    /// <param name="writer">The writer pool: one connection, which the batches share with the store's other writes.</param>
    /// <param name="time">The clock of message times.</param>
    /// <param name="hook">Runs once the batch's rows are written, for each message in order, inside its transaction.</param>
    /// <param name="feed">Hears of each batch: <see cref="MessageFeed.Expect"/> before the commit, then
    /// <see cref="MessageFeed.Committed"/> or <see cref="MessageFeed.TryTakeBack"/>.</param>
    /// <param name="events">Told when a batch wrote outbox jobs.</param>
    /// <param name="webhookPayload">The body of a message's webhook deliveries, kept in its outbox jobs: the webhooks'
    /// to say, not the store's.</param>
    /// <param name="maxWait">The longest a message may wait for its batch: the writer pool's acquire timeout.</param>
    public MessageWriter(
        DatabaseProvider provider,
        AsyncPool<DbConnection> writer,
        TimeProvider time,
        IMessageWriteHook? hook,
        MessageFeed feed,
        IDatabaseEvents events,
        Func<StoredMessage, string> webhookPayload,
        TimeSpan maxWait)
    {
        (_provider, _writer, _time, _hook, _feed, _events, _webhookPayload, _maxWait) = (provider, writer, time, hook, feed, events, webhookPayload, maxWait);
        _ = _scope.Start(WriteAllAsync, "writing loop");
    }

    /// <summary>Queues <paramref name="message"/> for the next batch; when the writer is stopping, fails it with
    /// <see cref="InvalidOperationException"/> instead.</summary>
    public void Post(PostedMessage message)
    {
        message.PostedAt = Stopwatch.GetTimestamp();
        if (!_posted.Writer.TryWrite(message))
        {
            message.Fail(new InvalidOperationException("The store is closing: the message was not stored."));
        }
    }

    /// <summary>Stops taking messages, and returns once those already posted are stored or failed.</summary>
    public async ValueTask DisposeAsync()
    {
        _posted.Writer.TryComplete();
        await using (_scope.ConfigureAwait(false))
        {
            await _scope.JoinAsync().ConfigureAwait(false);
        }
    }

    private async Task WriteAllAsync(CancellationToken cancellationToken)
    {
        // Each batch is many posts' work: none of the writer's spans (its waits for the connection) belongs in the
        // span of the scope, which lasts as long as the store.
        Activity.Current = null;
        ChannelReader<PostedMessage> posted = _posted.Reader;
        var batch = new List<PostedMessage>(MaxBatch);
        while (await posted.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (batch.Count < MaxBatch && posted.TryRead(out PostedMessage? message))
            {
                if (!message.TryTake())
                {
                    continue; // withdrawn
                }

                if (Stopwatch.GetElapsedTime(message.PostedAt) > _maxWait)
                {
                    message.Fail(new TimeoutException(
                        $"The message waited for the writer for longer than {_maxWait.TotalSeconds:0.###} s: the database is busy."));
                    continue;
                }

                batch.Add(message);
            }

            if (batch.Count > 0)
            {
                await WriteAsync(batch).ConfigureAwait(false);
                batch.Clear();
            }
        }
    }

    // Writes a batch, failing alone each message whose own statements fail; completes or fails every message of it.
    // Never throws.
    private async Task WriteAsync(List<PostedMessage> batch)
    {
        while (batch.Count > 0)
        {
            var attempt = new Attempt(batch.Count);
            try
            {
                // No caller's token: the batch is many callers', and the pool's acquire timeout bounds the wait.
                await _writer.UseAsync(
                    (connection, useToken) => Transactions.Begin(connection).WithAsync(
                        (transaction, ct) => WriteRowsAsync(connection, transaction, batch, attempt, ct), useToken),
                    CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                List<StoredMessage> written = attempt.Written;
                if (attempt.Committing && await CommittedAfterAllAsync(written[0].Id).ConfigureAwait(false))
                {
                    Stored(batch, written, attempt.Jobs);
                    return;
                }

                // The messages go back from the feed, unless it has read the batch back from the database already:
                // then the batch did commit, whatever the writer could not learn, and the feed acknowledges them.
                if (!_feed.TryTakeBack(written))
                {
                    Stored(batch, written, attempt.Jobs);
                    return;
                }

                if ((attempt.BlamedMessage < 0 && attempt.BlamedRoom is null) || _provider.IsInfrastructureFault(e))
                {
                    foreach (PostedMessage message in batch)
                    {
                        message.Fail(e);
                    }

                    return;
                }

                if (attempt.BlamedRoom is { } room)
                {
                    // That room's messages: the others go again without them.
                    foreach (PostedMessage message in batch.Where(message => message.Room == room))
                    {
                        message.Fail(e);
                    }

                    batch.RemoveAll(message => message.Room == room);
                    continue;
                }

                // That message alone: the others go again without it.
                batch[attempt.BlamedMessage].Fail(e);
                batch.RemoveAt(attempt.BlamedMessage);
                continue;
            }

            Stored(batch, attempt.Written, attempt.Jobs);
            return;
        }
    }

    // The body of a batch's transaction: the turn, the messages' rows, their outbox jobs, the rooms' summaries, the
    // hook, the announcement. What it learns on the way, and whom a failure is to blame on, goes into the attempt.
    private async Task WriteRowsAsync(
        DbConnection connection, DbTransaction transaction, List<PostedMessage> batch, Attempt attempt, CancellationToken ct)
    {
        DateTimeOffset now = await TakeTurnAsync(connection, transaction, ct).ConfigureAwait(false);
        long at = now.ToUnixTimeMilliseconds();
        DateTime sentAt = DateTimeOffset.FromUnixTimeMilliseconds(at).UtcDateTime;
        await using var statements = new StatementBatch(connection, transaction);

        // The messages first, for their ids; statement i is message i's.
        foreach (PostedMessage posted in batch)
        {
            statements.Add(InsertMessageSql, new("@room", posted.Room), new("@name", posted.Name), new("@text", posted.Text), new("@at", at));
        }

        long[] ids;
        try
        {
            ids = await statements.ReadIdsAsync(ct).ConfigureAwait(false);
        }
        catch (DbException)
        {
            attempt.BlamedMessage = statements.Failed;
            throw;
        }

        // Then each message's outbox jobs (statement i, again), and each room's summary after them.
        var rooms = new Dictionary<string, (int Count, long Last)>(StringComparer.Ordinal);
        for (int i = 0; i < batch.Count; i++)
        {
            attempt.BlamedMessage = i;
            PostedMessage posted = batch[i];
            var message = new StoredMessage(ids[i], posted.Room, posted.Name, posted.Text, sentAt);
            _feed.Expect(message.Id, posted);
            attempt.Written.Add(message);
            rooms[posted.Room] = (rooms.GetValueOrDefault(posted.Room).Count + 1, message.Id);

            // The delivery, later and perhaps on another node, continues the trace of the commit (W3C traceparent,
            // whose flags carry the sampling decision along).
            statements.Add(
                InsertJobsSql,
                new("@message", message.Id),
                new("@payload", _webhookPayload(message)),
                new("@at", at),
                new("@room", posted.Room),
                new("@trace", posted.TraceParent, DbType.String));
        }

        attempt.BlamedMessage = -1;

        // The rooms' summaries, kept with their messages so that listing the rooms never scans the messages: once per
        // room of the batch.
        string[] summarized = [.. rooms.Keys];
        foreach (string room in summarized)
        {
            (int count, long last) = rooms[room];
            statements.Add(CountInRoomSql, new("@room", room), new("@count", count), new("@last", last));
        }

        long[] rows;
        try
        {
            rows = await statements.CountRowsAsync(ct).ConfigureAwait(false);
        }
        catch (DbException)
        {
            if (statements.Failed >= batch.Count)
            {
                attempt.BlamedRoom = summarized[statements.Failed - batch.Count];
            }
            else
            {
                attempt.BlamedMessage = statements.Failed;
            }

            throw;
        }

        int jobs = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            jobs += (int)rows[i];
        }

        if (_hook is not null)
        {
            for (int i = 0; i < batch.Count; i++)
            {
                attempt.BlamedMessage = i;
                await _hook.OnWrittenAsync(attempt.Written[i], transaction, ct).ConfigureAwait(false);
            }

            attempt.BlamedMessage = -1;
        }

        await AnnounceAsync(connection, transaction, jobs, ct).ConfigureAwait(false);
        attempt.Jobs = jobs;
        attempt.Committing = true;
    }

    private void Stored(List<PostedMessage> batch, List<StoredMessage> written, int jobs)
    {
        Debug.Assert(written.Count == batch.Count, "Only a batch whose body completed commits.");
        _feed.Committed(written);
        for (int i = 0; i < batch.Count; i++)
        {
            batch[i].Complete(written[i]);
        }

        if (jobs > 0)
        {
            _events.JobsAvailable();
        }
    }

    // Whether the batch whose first message is `id` committed although its commit threw (the connection failed during
    // it): read on a new connection, the pool having destroyed the one that failed, after taking the messages' turn,
    // which the old transaction holds until the server has committed or aborted it. False when that fails too: then
    // the outcome stays unknown, and the senders are told the messages were not stored.
    private async Task<bool> CommittedAfterAllAsync(long id)
    {
        try
        {
            return await _writer.UseAsync((connection, useToken) => Transactions.Begin(connection).WithAsync(
                async (transaction, ct) =>
                {
                    await TakeTurnAsync(connection, transaction, ct).ConfigureAwait(false);
                    await using DbCommand select = Command(connection, transaction, "SELECT COUNT(*) FROM messages WHERE id = @id");
                    Bind(select, "@id", id);
                    return Convert.ToInt64(await select.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 1;
                },
                useToken), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception)
        {
            return false;
        }
    }

    // Takes the batch's turn, where ids must be committed in increasing order across nodes, and reads the time after
    // it, so that on each node a later id never has an earlier time.
    private async Task<DateTimeOffset> TakeTurnAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct)
    {
        if (_provider.TakeMessageTurnSql is { } takeTurn)
        {
            await using DbCommand turn = Command(connection, transaction, takeTurn);
            await turn.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return _time.GetUtcNow();
    }

    private async Task AnnounceAsync(DbConnection connection, DbTransaction transaction, int jobs, CancellationToken ct)
    {
        if (_provider.AnnounceMessageSql is { } announce)
        {
            await using DbCommand notify = Command(connection, transaction, announce);
            Bind(notify, "@jobs", jobs);
            await notify.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    // One try at writing a batch: what the transaction's body learned, and whom its failure is to blame on.
    private sealed class Attempt(int messages)
    {
        /// <summary>The messages whose rows were written, in the batch's order, each with its id.</summary>
        public List<StoredMessage> Written { get; } = new(messages);

        /// <summary>The message a failure now is to be blamed on (its statement, its payload or its hook is running),
        /// or -1.</summary>
        public int BlamedMessage { get; set; } = -1;

        /// <summary>The room whose summary failed, or null.</summary>
        public string? BlamedRoom { get; set; }

        /// <summary>The body is done: what fails now is the commit.</summary>
        public bool Committing { get; set; }

        /// <summary>The outbox jobs the batch wrote.</summary>
        public int Jobs { get; set; }
    }
}
