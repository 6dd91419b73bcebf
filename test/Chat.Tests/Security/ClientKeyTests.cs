using System.Net;
using System.Net.Http.Json;
using Chat.Tests.Support;

namespace Chat.Tests.Security;

/// <summary>With client keys set, reading, posting and WebSockets need one of them (or the admin key).</summary>
public sealed class ClientKeyTests : ServiceTest
{
    private const string ClientKey = "client-key-for-the-tests";

    public override Task InitializeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Without_a_client_key_reading_posting_and_websockets_get_401()
    {
        ChatServer server = await StartKeyedAsync();
        using HttpClient anonymous = AdminKeyTests.Caller(server.BaseAddress, key: null);
        using HttpClient wrong = AdminKeyTests.Caller(server.BaseAddress, "not-a-client-key-at-all");

        foreach (HttpClient caller in new[] { anonymous, wrong })
        {
            using HttpResponseMessage post = await caller.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "hi" });
            using HttpResponseMessage history = await caller.GetAsync("/api/rooms/lobby/messages");
            using HttpResponseMessage rooms = await caller.GetAsync("/api/rooms");
            Assert.All(new[] { post, history, rooms }, response => Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode));
        }

        Assert.Equal(401, await ChatClient.RefusedAsync(server.WebSocketUri("lobby", "ada")));
        Assert.Empty(await DatabaseFile.MessageTextsAsync(Directory.Path));
    }

    [Fact]
    public async Task A_client_key_or_the_admin_key_reads_posts_and_connects()
    {
        ChatServer server = await StartKeyedAsync();
        using HttpClient client = AdminKeyTests.Caller(server.BaseAddress, ClientKey);

        using HttpResponseMessage posted = await client.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "with a key" });
        using HttpResponseMessage history = await client.GetAsync("/api/rooms/lobby/messages");
        var uri = new UriBuilder(server.WebSocketUri("lobby", "bob")) { Query = $"name=bob&access_token={ClientKey}" }.Uri;
        await using ChatClient socket = await ChatClient.ConnectAsync(uri);
        await server.WaitForConnectionsAsync(count => count == 1); // in its room before the post is broadcast
        await server.PostAsync("lobby", "carol", "by the admin key"); // server.Http sends the admin key

        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        Assert.Equal(HttpStatusCode.OK, history.StatusCode);
        Assert.Equal("by the admin key", (await socket.ReceiveAsync("message")).GetProperty("text").GetString());
    }

    private Task<ChatServer> StartKeyedAsync() => StartServerAsync(settings: [$"Security:ClientKeys:0={ClientKey}"]);
}
