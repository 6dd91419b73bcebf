using System.Collections.Concurrent;
using System.Data.Common;
using Chat.Storage;

namespace Chat.Tests.Support;

/// <summary>
/// Sees every message's rows written, inside its batch's transaction: records which transaction wrote each text, fails
/// the texts it is told to (each time their statements run), and can hold the batch that writes a given text until
/// released.
/// </summary>
internal sealed class BatchHook : IMessageWriteHook
{
    private readonly ConcurrentDictionary<string, byte> _failing = new();
    private readonly ConcurrentDictionary<string, DbTransaction> _writtenIn = new();
    private (string Text, TaskCompletionSource Entered, Task Release)? _hold;

    /// <summary>The transaction that last wrote each text's rows (rolled back or committed).</summary>
    public IReadOnlyDictionary<string, DbTransaction> WrittenIn => _writtenIn;

    /// <summary>Every transaction that writes <paramref name="text"/> fails, from inside, once its rows are written.</summary>
    public void Fail(string text) => _failing[text] = 0;

    /// <summary>The batch that writes <paramref name="text"/> waits, inside its transaction, for <paramref name="release"/>.</summary>
    /// <returns>Completes when the batch waits.</returns>
    public Task Hold(string text, Task release)
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _hold = (text, entered, release);
        return entered.Task;
    }

    public async ValueTask OnWrittenAsync(StoredMessage message, DbTransaction transaction, CancellationToken cancellationToken)
    {
        _writtenIn[message.Text] = transaction;
        if (_hold is { } hold && hold.Text == message.Text)
        {
            _hold = null;
            hold.Entered.SetResult();
            await hold.Release.WaitAsync(ChatServer.Patience, cancellationToken);
        }

        if (_failing.ContainsKey(message.Text))
        {
            throw new InvalidOperationException($"Injected failure of '{message.Text}'.");
        }
    }
}
