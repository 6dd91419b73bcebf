using System.Net;
using Chat.Tests.Support;

namespace Chat.Tests.Security;

/// <summary>Kestrel's cap on open WebSockets: one beyond it is refused with 503, and the ones open go on.</summary>
public sealed class ConnectionLimitTests : ServiceTest
{
    public override Task InitializeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_websocket_beyond_MaxWebSockets_is_refused_with_503_and_the_open_ones_go_on()
    {
        ChatServer server = await StartServerAsync(settings: ["Chat:MaxWebSockets=2"]);
        await using ChatClient first = await server.ConnectAsync("lobby", "ada");
        await using ChatClient second = await server.ConnectAsync("lobby", "bob");

        int refused = await ChatClient.RefusedAsync(server.WebSocketUri("lobby", "carol"));

        Assert.Equal((int)HttpStatusCode.ServiceUnavailable, refused);
        await server.PostAsync("lobby", "dan", "still here");
        Assert.Equal("still here", (await second.ReceiveAsync("message")).GetProperty("text").GetString());
        Assert.Equal(2, server.Service.Hub.Count);
    }
}
