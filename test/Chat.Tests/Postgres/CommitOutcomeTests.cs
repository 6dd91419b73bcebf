using System.Net;
using System.Net.Http.Json;
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

    [Fact]
    public async Task A_batch_whose_commit_failed_and_could_not_be_read_again_is_stored_once_the_node_read_it_back()
    {
        await using var relay = new PostgresRelay(Database.ConnectionString, heldApplicationName: null);
        ChatServer server = await StartServerAsync(settings: [$"Database:ConnectionString={relay.ConnectionString}"]);
        await using ChatClient bob = await server.ConnectAsync("lobby", "bob");
        await server.PostAsync("lobby", "ada", "first"); // the writer's connection is open
        Assert.Equal("first", (await bob.ReceiveAsync("message")).GetProperty("text").GetString());

        // The commit's answer is lost, and new connections wait: the one the writer opens to learn the outcome among them.
        Task cut = relay.CutAfterNextCommit();
        Task asking = relay.HoldNew();
        Task<HttpResponseMessage> posting = server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "committed" });
        await cut.WaitAsync(ChatServer.Patience);
        await asking.WaitAsync(ChatServer.Patience);

        // Meanwhile the node reads the batch back from the database, and broadcasts it: it is stored.
        JsonElement message = await bob.ReceiveAsync("message");
        Assert.Equal("committed", message.GetProperty("text").GetString());

        // The writer cannot learn the outcome itself; the node it runs on knows it.
        relay.RefuseNew();
        using (HttpResponseMessage posted = await posting.WaitAsync(ChatServer.Patience))
        {
            Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
            Assert.Equal(message.GetProperty("id").GetInt64(), (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64());
        }

        relay.AdmitNew();
        await server.PostAsync("lobby", "ada", "next");
        Assert.Equal(["first", "committed", "next"], (await server.HistoryAsync("lobby")).Select(m => m.Text));
    }
}
