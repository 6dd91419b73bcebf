using System.Data.Common;

namespace Chat.Storage;

/// <summary>
/// Runs inside a batch's transaction, once the rows of every message of the batch and their outbox rows were written
/// and before the commit, once for each message, in order: whatever it throws for a message rolls the transaction back,
/// and that message is neither stored, nor acknowledged, nor broadcast (the others of its batch are written again
/// without it, see <see cref="MessageWriter"/>).
/// The service registers none; a test registers one to make a transaction fail midway.
/// </summary>
internal interface IMessageWriteHook
{
    ValueTask OnWrittenAsync(StoredMessage message, DbTransaction transaction, CancellationToken cancellationToken);
}
