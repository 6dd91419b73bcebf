using System.Collections.Concurrent;

namespace Chat.Storage;

/// <summary>
/// How committed messages reach this node: each once, in id order, to <see cref="IDatabaseEvents.MessageCommitted"/>,
/// with the <see cref="PostedMessage"/> when this node posted it. On SQLite the node is alone and its writer's batches
/// are the whole story (<see cref="InProcessMessageFeed"/>); on a shared PostgreSQL database every node's commits are
/// read back from the database (<see cref="PostgresMessageFeed"/>).
/// </summary>
/// <remarks>The <see cref="MessageWriter"/> calls <see cref="Expect"/> for each message of a batch before the commit,
/// then <see cref="Committed"/> once it committed, or <see cref="Forget"/> when it did not (or may not have).</remarks>
internal abstract partial class MessageFeed(IDatabaseEvents events, ILogger logger) : IAsyncDisposable
{
    // This node's messages, by id: registered before their commit, taken when published.
    private readonly ConcurrentDictionary<long, PostedMessage> _posted = new();

    /// <summary>Message <paramref name="id"/>, not yet committed, is <paramref name="posted"/>: when it is published,
    /// the events hear of it with the post.</summary>
    public void Expect(long id, PostedMessage posted) => _posted[id] = posted;

    /// <summary>Message <paramref name="id"/> was rolled back, or its commit's outcome is unknown: if it did commit, it
    /// is published as anyone's.</summary>
    /// <returns>False when it was published already, with its post: then it was committed.</returns>
    public bool Forget(long id) => _posted.TryRemove(id, out _);

    /// <summary>The writer committed <paramref name="messages"/>, in id order, each expected. Returns at once.</summary>
    public abstract void Committed(IReadOnlyList<StoredMessage> messages);

    /// <summary>Stops publishing (the in-process feed once what was committed before is published; the PostgreSQL
    /// feed at once); the posts it still expected are handed on, unacknowledged.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        foreach (long id in _posted.Keys)
        {
            if (_posted.TryRemove(id, out PostedMessage? posted))
            {
                posted.MarkHandedOn();
            }
        }
    }

    /// <summary>Stops the loop that publishes.</summary>
    protected abstract ValueTask StopAsync();

    /// <summary>Hands one committed message on; called one at a time, in id order. Never throws.</summary>
    protected void Publish(StoredMessage message)
    {
        _posted.TryRemove(message.Id, out PostedMessage? posted);
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
