namespace Chat.Storage;

/// <summary>
/// What the store tells the service: every committed message, this node's and (on a database that other nodes share)
/// theirs, and that webhook jobs may be waiting.
/// </summary>
/// <remarks>An implementation returns at once and does not throw. <see cref="MessageCommitted"/> is called one call at
/// a time, by the feed's loop; <see cref="JobsAvailable"/> by the writer and the feed, perhaps at once.</remarks>
internal interface IDatabaseEvents
{
    /// <summary>
    /// A committed message, in id order with every other one, each once (<see cref="MessageFeed"/>).
    /// <paramref name="posted"/> is its post when this node's writer stored it and still expected it; null for another
    /// node's, or for one of this node's whose commit's outcome the writer did not learn.
    /// </summary>
    void MessageCommitted(StoredMessage message, PostedMessage? posted);

    /// <summary>Outbox jobs were written, or another node gave up its claims on some: due jobs may be waiting.</summary>
    void JobsAvailable();
}
