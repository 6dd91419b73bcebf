using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Chat.Api;
using Chat.Tests.Support;

namespace Chat.Tests.Api;

public sealed class HttpInputTests : ServiceTest
{
    [Theory]
    [InlineData("bad room!", """{"name":"ada","text":"hi"}""", "room name")]
    [InlineData("a-room-name-that-is-far-too-long-to-be-one", """{"name":"ada","text":"hi"}""", "at most 32")]
    [InlineData("lobby", """{"text":"hi"}""", "name is required")]
    [InlineData("lobby", """{"name":" ada","text":"hi"}""", "does not start or end with a space")]
    [InlineData("lobby", """{"name":"ada<script>","text":"hi"}""", "only letters")]
    [InlineData("lobby", """{"name":"ada"}""", "needs a text")]
    [InlineData("lobby", """{"name":"ada","text":"   "}""", "needs a text")]
    [InlineData("lobby", """{"name":"ada","text":"bell \u0007"}""", "control characters")]
    [InlineData("lobby", """{"name":"ada","text":"hi""", "not valid JSON")]
    [InlineData("lobby", """not json at all""", "not valid JSON")]
    [InlineData("lobby", """null""", "JSON object")]
    [InlineData("lobby", """[1, 2]""", "not valid JSON")]
    [InlineData("lobby", """{"name":42,"text":"hi"}""", "not valid JSON")]
    public async Task A_bad_message_post_gets_400_with_what_is_wrong(string room, string body, string says)
    {
        using HttpResponseMessage response = await PostRawAsync($"/api/rooms/{Uri.EscapeDataString(room)}/messages", body);
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, says);
        Assert.Empty(await DatabaseFile.MessageTextsAsync(Directory.Path));
    }

    [Fact]
    public async Task A_text_over_the_length_limit_gets_400_and_one_at_the_limit_is_stored()
    {
        int limit = Server.Service.Options.MaxMessageLength;
        using HttpResponseMessage tooLong = await Server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = new string('x', limit + 1) });
        await AssertErrorAsync(tooLong, HttpStatusCode.BadRequest, $"at most {limit} characters");

        await Server.PostAsync("lobby", "ada", new string('x', limit));
        Assert.Single(await DatabaseFile.MessageTextsAsync(Directory.Path));
    }

    [Fact]
    public async Task A_body_over_the_size_limit_gets_413()
    {
        string body = JsonSerializer.Serialize(new { name = "ada", text = new string('x', Server.Service.Options.MaxRequestBodyBytes) });
        using HttpResponseMessage response = await PostRawAsync("/api/rooms/lobby/messages", body);
        await AssertErrorAsync(response, HttpStatusCode.RequestEntityTooLarge, "too large");
    }

    [Theory]
    [InlineData("/api/rooms/lobby/messages?limit=0", "'limit'")]
    [InlineData("/api/rooms/lobby/messages?limit=201", "'limit'")]
    [InlineData("/api/rooms/lobby/messages?limit=ten", "'limit'")]
    [InlineData("/api/rooms/lobby/messages?limit=-1", "'limit'")]
    [InlineData("/api/rooms/lobby/messages?before=0", "'before'")]
    [InlineData("/api/rooms/lobby/messages?before=abc", "'before'")]
    [InlineData("/api/rooms/lobby/messages?before=99999999999999999999", "'before'")]
    [InlineData("/api/rooms?limit=0", "'limit'")]
    [InlineData("/api/rooms?limit=201", "'limit'")]
    [InlineData("/api/rooms?after=", "'after'")]
    [InlineData("/api/rooms?after=not%20a%20room", "'after'")]
    public async Task A_bad_history_or_rooms_query_gets_400(string pathAndQuery, string says)
    {
        using HttpResponseMessage response = await Server.Http.GetAsync(pathAndQuery);
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, says);
    }

    [Theory]
    [InlineData("""{"room":"lobby","url":"ftp://example.com/hook"}""", "http or https")]
    [InlineData("""{"room":"lobby","url":"/relative"}""", "http or https")]
    [InlineData("""{"room":"lobby"}""", "http or https")]
    [InlineData("""{"room":"no room","url":"http://127.0.0.1/hook"}""", "room name")]
    [InlineData("""{"room":"lobby","url":""", "not valid JSON")]
    public async Task A_bad_webhook_registration_gets_400(string body, string says)
    {
        using HttpResponseMessage response = await PostRawAsync("/api/webhooks", body);
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, says);
    }

    [Fact]
    public async Task Registering_a_webhook_twice_returns_the_same_registration_and_it_can_be_removed()
    {
        var url = new Uri("http://127.0.0.1:9/hook");
        using HttpResponseMessage first = await Server.Http.PostAsJsonAsync("/api/webhooks", new { room = "lobby", url });
        using HttpResponseMessage again = await Server.Http.PostAsJsonAsync("/api/webhooks", new { room = "lobby", url });
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var registered = await first.Content.ReadFromJsonAsync(ChatJson.Default.WebhookRegistration);
        var same = await again.Content.ReadFromJsonAsync(ChatJson.Default.WebhookRegistration);
        Assert.Equal(registered! with { Secret = null }, same); // the secret is shown only when it is created

        using HttpResponseMessage removed = await Server.Http.DeleteAsync($"/api/webhooks/{registered!.Id}");
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        using HttpResponseMessage missing = await Server.Http.DeleteAsync($"/api/webhooks/{registered.Id}");
        await AssertErrorAsync(missing, HttpStatusCode.NotFound, "no webhook");
    }

    [Theory]
    [InlineData("/ws/rooms/lobby?name=", 400)]
    [InlineData("/ws/rooms/lobby", 400)]
    [InlineData("/ws/rooms/lobby?name=%20ada", 400)]
    [InlineData("/ws/rooms/bad%20room?name=ada", 400)]
    public async Task A_websocket_handshake_with_a_bad_name_or_room_is_refused_with_400(string path, int status)
    {
        var uri = new UriBuilder(Server.BaseAddress) { Scheme = "ws" }.Uri;
        Assert.Equal(status, await ChatClient.RefusedAsync(new Uri(uri, path)));
        Assert.Equal(0, Server.Service.Hub.Count);
    }

    [Fact]
    public async Task A_plain_request_to_the_websocket_endpoint_gets_400()
    {
        using HttpResponseMessage response = await Server.Http.GetAsync("/ws/rooms/lobby?name=ada");
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, "WebSocket requests only");
    }

    [Fact]
    public async Task History_pages_are_stable_while_messages_arrive()
    {
        var ids = new List<long>();
        for (int i = 1; i <= 25; i++)
        {
            ids.Add((await Server.PostAsync("lobby", "ada", $"message {i}")).Id);
        }

        Assert.Equal(ids.Order(), ids);
        MessagePage newest = (await Server.Http.GetFromJsonAsync("/api/rooms/lobby/messages?limit=10", ChatJson.Default.MessagePage))!;
        Assert.Equal(Enumerable.Range(16, 10).Select(i => $"message {i}"), newest.Messages.Select(m => m.Text));

        // New messages between two page reads do not move the older pages.
        await Server.PostAsync("lobby", "bob", "late 1");
        MessagePage middle = (await Server.Http.GetFromJsonAsync($"/api/rooms/lobby/messages?limit=10&before={newest.NextBefore}", ChatJson.Default.MessagePage))!;
        await Server.PostAsync("lobby", "bob", "late 2");
        MessagePage oldest = (await Server.Http.GetFromJsonAsync($"/api/rooms/lobby/messages?limit=10&before={middle.NextBefore}", ChatJson.Default.MessagePage))!;

        Assert.Equal(Enumerable.Range(6, 10).Select(i => $"message {i}"), middle.Messages.Select(m => m.Text));
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"message {i}"), oldest.Messages.Select(m => m.Text));
        Assert.Null(oldest.NextBefore);

        // The same page asked again is the same page.
        MessagePage middleAgain = (await Server.Http.GetFromJsonAsync($"/api/rooms/lobby/messages?limit=10&before={newest.NextBefore}", ChatJson.Default.MessagePage))!;
        Assert.Equal(middle.Messages, middleAgain.Messages);
    }

    [Fact]
    public async Task The_rooms_list_pages_the_rooms_with_messages_by_name_and_counts_their_clients_online()
    {
        for (int i = 1; i <= 3; i++)
        {
            for (int m = 0; m < i; m++)
            {
                await Server.PostAsync($"room-{i}", "ada", $"message {m}");
            }
        }

        await using ChatClient watcher = await Server.ConnectAsync("room-2", "bob");
        await using ChatClient quiet = await Server.ConnectAsync("quiet", "carol"); // no message: not a listed room

        RoomPage first = (await Server.Http.GetFromJsonAsync("/api/rooms?limit=2", ChatJson.Default.RoomPage))!;
        RoomPage second = (await Server.Http.GetFromJsonAsync($"/api/rooms?limit=2&after={first.NextAfter}", ChatJson.Default.RoomPage))!;

        Assert.Equal([("room-1", 1L, 0), ("room-2", 2L, 1)], first.Rooms.Select(r => (r.Name, r.Messages, r.Online)));
        Assert.Equal("room-2", first.NextAfter);
        Assert.Equal([("room-3", 3L, 0)], second.Rooms.Select(r => (r.Name, r.Messages, r.Online)));
        Assert.Null(second.NextAfter);
        IReadOnlyList<Chat.Storage.StoredMessage> newest = await Server.HistoryAsync("room-3", limit: 1);
        Assert.Equal(newest[0].Id, second.Rooms[0].LastMessageId);
    }

    [Fact]
    public async Task A_database_without_room_summaries_gets_them_from_its_messages_at_the_start()
    {
        await Server.PostAsync("lobby", "ada", "one");
        await Server.PostAsync("lobby", "ada", "two");
        await Server.StopAsync();
        await DatabaseFile.ExecuteAsync(Directory.Path, "DROP TABLE rooms"); // as a file of an earlier version has it

        ChatServer restarted = await StartServerAsync();
        RoomPage rooms = (await restarted.Http.GetFromJsonAsync("/api/rooms", ChatJson.Default.RoomPage))!;

        Assert.Equal([("lobby", 2L)], rooms.Rooms.Select(r => (r.Name, r.Messages)));
    }

    [Fact]
    public async Task The_page_is_served_at_the_root()
    {
        using HttpResponseMessage response = await Server.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Contains("new WebSocket(", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private Task<HttpResponseMessage> PostRawAsync(string path, string body) =>
        Server.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string says)
    {
        Assert.Equal(status, response.StatusCode);
        ErrorResponse? error = await response.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse);
        Assert.Contains(says, error!.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Chat.", error.Error, StringComparison.Ordinal); // no internal type named
        Assert.DoesNotContain("System.", error.Error, StringComparison.Ordinal);
    }
}
