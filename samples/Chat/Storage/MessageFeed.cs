namespace Chat.Storage;

/// <summary>
/// How committed messages reach this node: each once, in id order, to <see cref="IDatabaseEvents.MessageCommitted"/>,
/// with the <see cref="PostedMessage"/> when this node posted it. On SQLite the node is alone and its writer's batches
/// are the whole story (<see cref="InProcessMessageFeed"/>); on a shared PostgreSQL database every node's commits are
/// read back from the database (<see cref="PostgresMessageFeed"/>).
/// </summary>
/// <remarks>The <see cref="MessageWriter"/> calls <see cref="Expect"/> for each message of a batch before the commit,
/// then <see cref="Committed"/> once it committed, or <see cref="TryTakeBack"/> when it did not (or may not have).</remarks>
internal abstract partial class MessageFeed(IDatabaseEvents events, ILogger logger) : IAsyncDisposable
{
    // This node's messages, by id: registered before their commit, taken when published, or taken back by the writer.
    // A batch is taken back whole or not at all, under the lock that each publication takes them under.
    private readonly Dictionary<long, PostedMessage> _posted = [];
    private readonly Lock _lock = new();

    /// <summary>Message <paramref name="id"/>, not yet committed, is <paramref name="posted"/>: when it is published,
    /// the events hear of it with the post.</summary>
    public void Expect(long id, PostedMessage posted)
    {
        lock (_lock)
        {
            _posted[id] = posted;
        }
    }

    /// <summary>
    /// The batch of <paramref name="messages"/> (expected, in id order) was rolled back, or its commit's outcome is
    /// unknown: the feed no longer expects them, and if they did commit, it publishes them as anyone's. Unless it
    /// has published the first of them already: then the batch committed, and the feed goes on publishing it with the
    /// posts, acknowledging each.
    /// </summary>
    /// <returns>False when the batch was committed and the feed keeps it.</returns>
    /// <remarks>Ids are published in increasing order, and a batch's ids are committed together, in order: the feed
    /// has begun a batch exactly when it has taken its first message.</remarks>
    public bool TryTakeBack(IReadOnlyList<StoredMessage> messages)
    {
        lock (_lock)
        {
            if (messages.Count > 0 && !_posted.ContainsKey(messages[0].Id))
            {
                return false;
            }

            foreach (StoredMessage message in messages)
            {
                _posted.Remove(message.Id);
            }

            return true;
        }
    }

    /// <summary>The writer committed <paramref name="messages"/>, in id order, each expected. Returns at once.</summary>
    public abstract void Committed(IReadOnlyList<StoredMessage> messages);

    /// <summary>Stops publishing (the in-process feed once what was committed before is published; the PostgreSQL
    /// feed at once); the posts it still expected are handed on, unacknowledged.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        PostedMessage[] unpublished;
        lock (_lock)
        {
            unpublished = [.. _posted.Values];
            _posted.Clear();
        }

        foreach (PostedMessage posted in unpublished)
        {
            posted.MarkHandedOn();
        }
    }

    /// <summary>Stops the loop that publishes.</summary>
    protected abstract ValueTask StopAsync();

    /// <summary>Hands one committed message on; called one at a time, in id order. Never throws.</summary>
    protected void Publish(StoredMessage message)
    {
        PostedMessage? posted;
        lock (_lock)
        {
            _posted.Remove(message.Id, out posted);
        }

        try
        {
            events.MessageCommitted(message, posted);
        }
        catch (Exception e)
        {
            // One broken subscriber must not stop the feed for every other message.
            LogPublishFailed(logger, e, message.Id);
        }
        finally
        {
            posted?.MarkHandedOn();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Message {Id} could not be handed on.")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, long id);
}
