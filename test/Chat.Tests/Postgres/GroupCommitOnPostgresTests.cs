using Chat.Storage;
using Chat.Tests.Storage;
using Chat.Tests.Support;
using Npgsql;

namespace Chat.Tests.Postgres;

/// <summary>Batches of messages on PostgreSQL, where a batch's statements go to the server together.</summary>
public sealed class GroupCommitOnPostgresTests : PostgresServiceTest
{
    private readonly BatchHook _hook = new();

    internal override IMessageWriteHook Hook => _hook;

    [Fact]
    public async Task A_message_the_database_refuses_fails_alone_and_the_others_of_its_batch_are_stored_in_order_on_every_node()
    {
        // A rule of the database's own: the statement that writes the message fails, among the batch's others.
        await Database.ExecuteAsync("ALTER TABLE messages ADD CONSTRAINT refused CHECK (text <> 'refused')");
        ChatServer other = await StartServerAsync();
        await using ChatClient bob = await other.ConnectAsync("lobby", "bob");
        (Task<StoredMessage> first, TaskCompletionSource release) = await _hook.HoldBatchOfAsync(Server, "first");

        Task<StoredMessage>[] posts = [.. new[] { "before", "refused", "after" }.Select(text => Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", text)))];
        release.SetResult();

        var failure = await Assert.ThrowsAsync<PostgresException>(() => posts[1].WaitAsync(ChatServer.Patience));
        Assert.Equal(PostgresErrorCodes.CheckViolation, failure.SqlState);
        StoredMessage[] stored = await Task.WhenAll(first, posts[0], posts[2]).WaitAsync(ChatServer.Patience);
        Assert.True(stored[0].Id < stored[1].Id && stored[1].Id < stored[2].Id);
        Assert.False(_hook.WrittenIn.ContainsKey("refused"));
        Assert.Same(_hook.WrittenIn["before"][^1], Assert.Single(_hook.WrittenIn["after"]));

        Assert.Equal(["first", "before", "after"], await GroupCommitTests.ReceiveTextsAsync(bob, 3));
        Assert.Equal(["first", "before", "after"], (await other.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.Empty(bob.Drain());
    }
}
