using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Storage;
using Chat.Tests.Support;
using Microsoft.Data.Sqlite;

namespace Chat.Tests.Storage;

public sealed class DatabaseFaultTests : ServiceTest
{
    private readonly FailingHook _hook = new();

    internal override IMessageWriteHook Hook => _hook;

    [Fact]
    public async Task A_message_whose_transaction_fails_is_neither_stored_nor_acknowledged_nor_broadcast()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");

        _hook.FailOn("doomed", () => new InvalidOperationException("Injected failure before the commit."));
        await ada.SendAsync("doomed");
        JsonElement error = await ada.ReceiveAsync();
        Assert.Equal("error", ChatClient.TypeOf(error));
        Assert.Contains("not stored", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, _hook.Failures);

        // The service goes on: the next message is stored, acknowledged and broadcast, and it is the first either
        // client sees, so nothing of the failed one came before it.
        await ada.SendAsync("fine");
        JsonElement ack = await ada.ReceiveAsync();
        Assert.Equal("ack", ChatClient.TypeOf(ack));
        JsonElement adaSees = await ada.ReceiveAsync();
        JsonElement bobSees = await bob.ReceiveAsync();
        Assert.Equal("fine", adaSees.GetProperty("text").GetString());
        Assert.Equal("fine", bobSees.GetProperty("text").GetString());
        Assert.Equal(ack.GetProperty("id").GetInt64(), bobSees.GetProperty("id").GetInt64());
        Assert.Empty(bob.Drain());

        IReadOnlyList<StoredMessage> history = await Server.HistoryAsync("lobby");
        Assert.Equal(["fine"], history.Select(m => m.Text));
    }

    [Fact]
    public async Task A_sqlite_error_midway_rolls_back_and_the_writer_connection_is_replaced()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");
        await Server.PostAsync("lobby", "ada", "first");
        await ada.ReceiveAsync("message");
        long createdBefore = Server.Service.Store.WriterStatistics.Created;

        // A real error of the database inside the transaction, after the message row was written.
        _hook.FailWithSql("broken", "INSERT INTO no_such_table VALUES (1)");
        await ada.SendAsync("broken");
        JsonElement error = await ada.ReceiveAsync();
        Assert.Equal("error", ChatClient.TypeOf(error));

        await ada.SendAsync("after");
        await ada.ReceiveAsync("ack");
        Assert.Equal(["first", "after"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));

        // The connection that saw the SqliteException was destroyed, and a new one opened for the next message.
        Assert.Equal(createdBefore + 1, Server.Service.Store.WriterStatistics.Created);
        Assert.Equal(1, Server.Service.Store.WriterStatistics.Destroyed);
    }

    [Fact]
    public async Task A_post_whose_transaction_fails_gets_500_and_nothing_is_stored()
    {
        _hook.FailOn("doomed", () => new InvalidOperationException("Injected failure before the commit."));
        using HttpResponseMessage response = await Server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "doomed" });
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Contains("not stored", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Empty(await Server.HistoryAsync("lobby"));
    }

    [Fact]
    public async Task The_outbox_rows_of_a_failed_message_are_rolled_back_with_it()
    {
        await using WebhookReceiver receiver = await WebhookReceiver.StartAsync();
        await Server.RegisterWebhookAsync("lobby", receiver.Url);

        _hook.FailOn("doomed", () => new InvalidOperationException("Injected failure before the commit."));
        using (HttpResponseMessage failed = await Server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "doomed" }))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        await Server.PostAsync("lobby", "ada", "kept");
        WebhookOutcome outcome = await receiver.NextOutcomeAsync();
        Assert.Equal("kept", outcome.Request.Text);
        await Server.WaitForOutboxAsync(counts => counts.Delivered == 1);
        Assert.Equal(new OutboxCounts(0, 1, 0), await Server.OutboxAsync());
    }

    [Fact]
    public async Task A_read_that_fails_in_the_database_gets_a_json_500_on_every_endpoint()
    {
        await Server.PostAsync("lobby", "ada", "before the fault");

        // The tables go missing under the service: every read of it fails in SQLite.
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(Directory.Path, "chat.db")};Pooling=False"))
        {
            await connection.OpenAsync();
            await using SqliteCommand rename = connection.CreateCommand();
            rename.CommandText = "ALTER TABLE messages RENAME TO messages_gone; ALTER TABLE rooms RENAME TO rooms_gone;";
            await rename.ExecuteNonQueryAsync();
        }

        foreach (string path in new[] { "/api/rooms/lobby/messages", "/api/rooms" })
        {
            using HttpResponseMessage response = await Server.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            string error = (await response.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error;
            Assert.Equal("The service failed to answer. Try again.", error);
            Assert.Equal("nosniff", string.Join(",", response.Headers.GetValues("X-Content-Type-Options")));
        }
    }
}
