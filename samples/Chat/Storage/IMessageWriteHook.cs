using System.Data.Common;

namespace Chat.Storage;

/// <summary>
/// Runs inside a message's transaction, after the message and its outbox rows were written and before the commit:
/// whatever it throws rolls the transaction back, and the message is neither stored, nor acknowledged, nor broadcast.
/// The service registers none; a test registers one to make a transaction fail midway.
/// </summary>
internal interface IMessageWriteHook
{
    ValueTask OnWrittenAsync(StoredMessage message, DbTransaction transaction, CancellationToken cancellationToken);
}
