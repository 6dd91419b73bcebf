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
    private readonly ConcurrentDictionary<string, List<DbTransaction>> _writtenIn = new();
    private readonly ConcurrentDictionary<string, Func<Exception>> _failingWith = new();
    private Held? _hold;

    /// <summary>The transactions that wrote each text's rows (rolled back or committed), in order.</summary>
    public IReadOnlyDictionary<string, List<DbTransaction>> WrittenIn => _writtenIn;

    /// <summary>Every transaction that writes <paramref name="text"/> fails, from inside, once its rows are written.</summary>
    public void Fail(string text) => _failing[text] = 0;

    /// <summary>Every transaction that writes <paramref name="text"/> throws what <paramref name="failure"/> makes.</summary>
    public void Fail(string text, Func<Exception> failure) => _failingWith[text] = failure;

    /// <summary>The batch that writes <paramref name="text"/> waits, inside its transaction, for <paramref name="release"/>.</summary>
    /// <returns>Completes when the batch waits.</returns>
    public Task Hold(string text, Task release)
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _hold, new Held(text, entered, release));
        return entered.Task;
    }

    /// <summary>Posts <paramref name="text"/> to <paramref name="server"/> and returns once its batch waits, inside its
    /// transaction, for the returned gate: what is posted meanwhile queues for the next batch.</summary>
    public async Task<(Task<StoredMessage> Post, TaskCompletionSource Release)> HoldBatchOfAsync(ChatServer server, string text)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task held = Hold(text, release.Task);
        Task<StoredMessage> post = server.Service.PostAsync("lobby", "ada", text, sender: null, CancellationToken.None);
        await held.WaitAsync(ChatServer.Patience);
        return (post, release);
    }

    public async ValueTask OnWrittenAsync(StoredMessage message, DbTransaction transaction, CancellationToken cancellationToken)
    {
        List<DbTransaction> transactions = _writtenIn.GetOrAdd(message.Text, _ => []);
        lock (transactions)
        {
            transactions.Add(transaction);
        }

        if (Volatile.Read(ref _hold) is { } hold && hold.Text == message.Text)
        {
            Volatile.Write(ref _hold, null);
            hold.Entered.SetResult();
            await hold.Release.WaitAsync(ChatServer.Patience, cancellationToken);
        }

        if (_failing.ContainsKey(message.Text))
        {
            throw new InvalidOperationException($"Injected failure of '{message.Text}'.");
        }

        if (_failingWith.TryGetValue(message.Text, out Func<Exception>? failure))
        {
            throw failure();
        }
    }

    private sealed record Held(string Text, TaskCompletionSource Entered, Task Release);
}
