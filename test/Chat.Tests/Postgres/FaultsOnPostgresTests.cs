using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests.Postgres;

public sealed class FaultsOnPostgresTests : PostgresServiceTest
{
    private readonly FailingHook _hook = new();

    internal override IMessageWriteHook Hook => _hook;

    [Fact]
    public async Task A_message_whose_transaction_fails_is_neither_stored_nor_acknowledged_nor_broadcast_on_any_node()
    {
        ChatServer other = await StartServerAsync();
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");
        await using ChatClient bob = await other.ConnectAsync("lobby", "bob");

        _hook.FailOn("doomed", () => new InvalidOperationException("Injected failure before the commit."));
        await ada.SendAsync("doomed");
        JsonElement error = await ada.ReceiveAsync();
        Assert.Equal("error", ChatClient.TypeOf(error));
        Assert.Contains("not stored", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, _hook.Failures);

        _hook.FailOn("doomed again", () => new InvalidOperationException("Injected failure before the commit."));
        using (HttpResponseMessage failed = await Server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "doomed again" }))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        Assert.Equal(2, _hook.Failures);

        // The next message is the first that either node's client sees: the failed ones reached no node, since a
        // transaction that rolls back notifies nobody.
        await ada.SendAsync("fine");
        long id = (await ada.ReceiveAsync("ack")).GetProperty("id").GetInt64();
        foreach (ChatClient client in new[] { ada, bob })
        {
            JsonElement fine = await client.ReceiveAsync("message");
            Assert.Equal(("fine", id), (fine.GetProperty("text").GetString(), fine.GetProperty("id").GetInt64()));
            Assert.Empty(client.Drain());
        }

        Assert.Equal(["fine"], (await other.HistoryAsync("lobby")).Select(m => m.Text));
    }

    [Fact]
    public async Task A_server_error_midway_rolls_back_and_the_sound_writer_connection_is_kept()
    {
        await Server.PostAsync("lobby", "ada", "first");

        // The server rejects a statement of the transaction (42P01, no such table): the connection itself is fine.
        _hook.FailWithSql("broken", "INSERT INTO no_such_table VALUES (1)");
        using (HttpResponseMessage failed = await Server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "broken" }))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        await Server.PostAsync("lobby", "ada", "after");
        Assert.Equal(["first", "after"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.Equal(1, _hook.Failures);
        Assert.Equal((1, 0), (Server.Service.Store.WriterStatistics.Created, Server.Service.Store.WriterStatistics.Destroyed));
    }

    [Fact]
    public async Task A_writer_connection_the_server_ends_midway_is_destroyed_and_replaced()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");
        await Server.PostAsync("lobby", "ada", "first");
        await ada.ReceiveAsync("message");

        // The writer's own server process is terminated inside the message's transaction.
        _hook.FailWithSql("cut off", "SELECT pg_terminate_backend(pg_backend_pid())");
        await ada.SendAsync("cut off");
        Assert.Equal("error", ChatClient.TypeOf(await ada.ReceiveAsync()));

        await ada.SendAsync("after");
        await ada.ReceiveAsync("ack");
        Assert.Equal("after", (await ada.ReceiveAsync("message")).GetProperty("text").GetString());
        Assert.Equal(["first", "after"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.Equal((2, 1), (Server.Service.Store.WriterStatistics.Created, Server.Service.Store.WriterStatistics.Destroyed));
    }
}
