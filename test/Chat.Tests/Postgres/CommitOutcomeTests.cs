using System.Text.Json;
using Chat.Tests.Support;

namespace Chat.Tests.Postgres;

/// <summary>A commit whose answer is lost: the batch's outcome is read again, on a new connection.</summary>
public sealed class CommitOutcomeTests : PostgresServiceTest
{
    private protected override bool StartsServer => false;

    [Fact]
    public async Task A_batch_that_committed_although_its_commit_failed_is_stored_acknowledged_and_broadcast_once()
    {
        await using var relay = new PostgresRelay(Database.ConnectionString, heldApplicationName: null);
        ChatServer server = await StartServerAsync(settings: [$"Database:ConnectionString={relay.ConnectionString}"]);
        await using ChatClient ada = await server.ConnectAsync("lobby", "ada");
        await using ChatClient bob = await server.ConnectAsync("lobby", "bob");

        Task cut = relay.CutAfterNextCommit();
        await ada.SendAsync("committed");
        await cut.WaitAsync(ChatServer.Patience);

        // Stored, so acknowledged as such: an error would have the sender resend it, and store it twice.
        long id = (await ada.ReceiveAsync("ack")).GetProperty("id").GetInt64();
        foreach (ChatClient client in new[] { ada, bob })
        {
            JsonElement message = await client.ReceiveAsync("message");
            Assert.Equal(("committed", id), (message.GetProperty("text").GetString(), message.GetProperty("id").GetInt64()));
        }

        await ada.SendAsync("next");
        await ada.ReceiveAsync("ack");
        Assert.Equal("next", (await bob.ReceiveAsync("message")).GetProperty("text").GetString());
        Assert.Equal(["committed", "next"], (await server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.DoesNotContain(ada.Drain(), frame => ChatClient.TypeOf(frame) == "error");
        Assert.Equal(1, server.Service.Store.WriterStatistics.Destroyed); // the connection that failed
    }
}
