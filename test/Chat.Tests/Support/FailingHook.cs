using System.Data.Common;
using Chat.Storage;

namespace Chat.Tests.Support;

/// <summary>Fails the transaction of the next message with a given text, once, from inside it.</summary>
internal sealed class FailingHook : IMessageWriteHook
{
    private (string Text, Func<DbTransaction, CancellationToken, Task> Fail)? _fault;
    private int _failures;

    /// <summary>The transactions it failed.</summary>
    public int Failures => Volatile.Read(ref _failures);

    /// <summary>Throws what <paramref name="failure"/> makes.</summary>
    public void FailOn(string text, Func<Exception> failure) => FailOn(text, (_, _) => throw failure());

    public void FailOn(string text, Func<DbTransaction, CancellationToken, Task> fail) => _fault = (text, fail);

    /// <summary>Runs <paramref name="sql"/> in the transaction: a real error of the database.</summary>
    public void FailWithSql(string text, string sql) => FailOn(text, async (transaction, ct) =>
    {
        await using DbCommand command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(ct);
    });

    public async ValueTask OnWrittenAsync(StoredMessage message, DbTransaction transaction, CancellationToken cancellationToken)
    {
        if (_fault is { } fault && fault.Text == message.Text)
        {
            _fault = null;
            Interlocked.Increment(ref _failures);
            await fault.Fail(transaction, cancellationToken);
        }
    }
}
