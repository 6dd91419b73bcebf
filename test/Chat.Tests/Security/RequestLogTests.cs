using Chat.Tests.Support;

namespace Chat.Tests.Security;

/// <summary>The service as a user starts it, from a folder of its own: a key in a WebSocket's query is never logged.</summary>
public sealed class RequestLogTests : IDisposable
{
    private const string ClientKey = "client-key-that-must-not-be-logged";

    private readonly TempDirectory _directory = new();

    [Fact]
    public async Task A_websockets_access_token_never_reaches_the_log()
    {
        await using ChatProcess service = await ChatProcess.StartAsync(_directory.Path, $"Security:ClientKeys:0={ClientKey}");
        var uri = new UriBuilder(service.WebSocketUri("lobby", "ada")) { Query = $"name=ada&access_token={ClientKey}" }.Uri;

        await using (ChatClient client = await ChatClient.ConnectAsync(uri))
        {
            await client.SendAsync("hello");
            await client.ReceiveAsync("ack");
        }

        Assert.DoesNotContain(ClientKey, service.Output, StringComparison.Ordinal);
    }

    public void Dispose() => _directory.Dispose();
}
