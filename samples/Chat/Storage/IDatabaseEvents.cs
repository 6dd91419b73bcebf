namespace Chat.Storage;

/// <summary>
/// What the store learns from a database that other nodes share (PostgreSQL): the messages they commit, and that
/// webhook jobs may be waiting. On SQLite the node is alone, and neither is ever called.
/// </summary>
/// <remarks>Called from the store's listening loop, one call at a time; an implementation returns at once and does
/// not throw.</remarks>
internal interface IDatabaseEvents
{
    /// <summary>
    /// A committed message that no sender on this node waits for: another node's (or one of this node's whose
    /// writer gave up on it before hearing of the commit). Called once per message, in id order with the
    /// <c>committed</c> callbacks of <see cref="ChatStore.AppendMessageAsync"/>.
    /// </summary>
    void MessageCommitted(StoredMessage message);

    /// <summary>Another node wrote outbox jobs, or gave up its claims on some: due jobs may be waiting.</summary>
    void JobsAvailable();
}
