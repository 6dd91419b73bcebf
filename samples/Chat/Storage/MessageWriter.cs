using System.Data;
using System.Data.Common;
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
/// again, in a new transaction on a connection the pool still trusts. A failure of the batch as a whole (the writer
/// busy past its acquire timeout, the turn, the commit) fails every message of it.</para>
/// <para>On a shared database the batch takes the turn once and notifies once (<see cref="DatabaseProvider"/>), so
/// ids are committed in increasing order across nodes and every node reads the batch back in one go.</para>
/// </remarks>
internal sealed class MessageWriter : IAsyncDisposable
{
    /// <summary>The most messages in one transaction.</summary>
    public const int MaxBatch = 256;

    private readonly DatabaseProvider _provider;
    private readonly AsyncPool<DbConnection> _writer;
    private readonly TimeProvider _time;
    private readonly IMessageWriteHook? _hook;
    private readonly MessageFeed _feed;
    private readonly IDatabaseEvents _events;
    private readonly Func<StoredMessage, string> _webhookPayload;
    private readonly Channel<PostedMessage> _posted =
        Channel.CreateUnbounded<PostedMessage>(new UnboundedChannelOptions { SingleReader = true });

    private readonly TaskScope _scope = new(new TaskScopeOptions { Name = "chat writer" });

    /// <param name="provider">The database.</param>
    /// <param name="writer">The writer pool: one connection, which the batches share with the store's other writes.</param>
    /// <param name="time">The clock of message times.</param>
    /// <param name="hook">Runs after each message's rows, inside its batch's transaction.</param>
    /// <param name="feed">Hears of each batch: <see cref="MessageFeed.Expect"/> before the commit, then
    /// <see cref="MessageFeed.Committed"/> or <see cref="MessageFeed.Forget"/>.</param>
    /// <param name="events">Told when a batch wrote outbox jobs.</param>
    /// <param name="webhookPayload">The body of a message's webhook deliveries, kept in its outbox jobs: the webhooks'
    /// to say, not the store's.</param>
    public MessageWriter(
        DatabaseProvider provider,
        AsyncPool<DbConnection> writer,
        TimeProvider time,
        IMessageWriteHook? hook,
        MessageFeed feed,
        IDatabaseEvents events,
        Func<StoredMessage, string> webhookPayload)
    {
        (_provider, _writer, _time, _hook, _feed, _events, _webhookPayload) = (provider, writer, time, hook, feed, events, webhookPayload);
        _ = _scope.Start(WriteAllAsync, "writing loop");
    }

    /// <summary>Queues <paramref name="message"/> for the next batch.</summary>
    /// <exception cref="InvalidOperationException">The writer is stopping: the message will not be stored.</exception>
    public void Post(PostedMessage message)
    {
        if (!_posted.Writer.TryWrite(message))
        {
            throw new InvalidOperationException("The store is closing: the message was not stored.");
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
        ChannelReader<PostedMessage> posted = _posted.Reader;
        var batch = new List<PostedMessage>(MaxBatch);
        while (await posted.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (batch.Count < MaxBatch && posted.TryRead(out PostedMessage? message))
            {
                if (message.TryTake())
                {
                    batch.Add(message);
                }
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
            var written = new List<StoredMessage>(batch.Count);
            int writing = -1; // the message whose statements were running, while they were
            int jobs;
            try
            {
                // No caller's token: the batch is many callers', and the pool's acquire timeout bounds the wait.
                jobs = await _writer.UseAsync(
                    (connection, useToken) => Transactions.Begin(connection).WithAsync(
                        async (transaction, ct) =>
                        {
                            DateTimeOffset now = await TakeTurnAsync(connection, transaction, ct).ConfigureAwait(false);
                            int batchJobs = 0;
                            for (int i = 0; i < batch.Count; i++)
                            {
                                writing = i;
                                (StoredMessage message, int messageJobs) = await WriteMessageAsync(connection, transaction, batch[i], now, ct)
                                    .ConfigureAwait(false);
                                writing = -1;
                                _feed.Expect(message.Id, batch[i]);
                                written.Add(message);
                                batchJobs += messageJobs;
                            }

                            await AnnounceAsync(connection, transaction, batchJobs, ct).ConfigureAwait(false);
                            return batchJobs;
                        },
                        useToken),
                    CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                foreach (StoredMessage message in written)
                {
                    _feed.Forget(message.Id);
                }

                if (writing < 0)
                {
                    foreach (PostedMessage message in batch)
                    {
                        message.Fail(e);
                    }

                    return;
                }

                // That message alone: the others go again without it.
                batch[writing].Fail(e);
                batch.RemoveAt(writing);
                continue;
            }

            _feed.Committed(written);
            for (int i = 0; i < batch.Count; i++)
            {
                batch[i].Complete(written[i]);
            }

            if (jobs > 0)
            {
                _events.JobsAvailable();
            }

            return;
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

    private async Task<(StoredMessage Message, int Jobs)> WriteMessageAsync(
        DbConnection connection, DbTransaction transaction, PostedMessage posted, DateTimeOffset now, CancellationToken ct)
    {
        long at = now.ToUnixTimeMilliseconds();
        await using DbCommand insert = Command(connection, transaction, """
            INSERT INTO messages (room, name, text, at) VALUES (@room, @name, @text, @at) RETURNING id
            """);
        Bind(insert, "@room", posted.Room);
        Bind(insert, "@name", posted.Name);
        Bind(insert, "@text", posted.Text);
        Bind(insert, "@at", at);
        long id = (long)(await insert.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        var message = new StoredMessage(id, posted.Room, posted.Name, posted.Text, DateTimeOffset.FromUnixTimeMilliseconds(at).UtcDateTime);

        // The room's summary, kept with its messages, so that listing the rooms never scans the messages.
        await using (DbCommand summary = Command(connection, transaction, """
            INSERT INTO rooms (name, messages, last_message_id) VALUES (@room, 1, @id)
            ON CONFLICT (name) DO UPDATE SET messages = rooms.messages + 1, last_message_id = excluded.last_message_id
            """))
        {
            Bind(summary, "@room", posted.Room);
            Bind(summary, "@id", id);
            await summary.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        // The delivery, later and perhaps on another node, continues the trace of the commit (W3C traceparent, whose
        // flags carry the sampling decision along).
        await using DbCommand outbox = Command(connection, transaction, """
            INSERT INTO outbox (webhook_id, message_id, url, payload, next_attempt_at, trace_parent)
            SELECT id, @message, url, @payload, @at, @trace FROM webhooks WHERE room = @room
            """);
        Bind(outbox, "@trace", posted.TraceParent, DbType.String);
        Bind(outbox, "@message", id);
        Bind(outbox, "@payload", _webhookPayload(message));
        Bind(outbox, "@at", at);
        Bind(outbox, "@room", posted.Room);
        int jobs = await outbox.ExecuteNonQueryAsync(ct).ConfigureAwait(false);

        if (_hook is not null)
        {
            await _hook.OnWrittenAsync(message, transaction, ct).ConfigureAwait(false);
        }

        return (message, jobs);
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
}
