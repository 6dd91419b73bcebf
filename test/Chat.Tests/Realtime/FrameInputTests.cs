using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Chat.Tests.Support;

namespace Chat.Tests.Realtime;

public sealed class FrameInputTests : ServiceTest
{
    [Fact]
    public async Task A_binary_frame_is_closed_with_1003()
    {
        await using ChatClient client = await Server.ConnectAsync("lobby", "ada");
        await client.SendRawAsync(new byte[] { 0xde, 0xad }, WebSocketMessageType.Binary);
        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, await client.WaitClosedAsync());
        Assert.Equal("Only text frames are accepted.", client.CloseReason);
        await Server.WaitForConnectionsAsync(count => count == 0);
    }

    [Fact]
    public async Task An_oversized_message_is_closed_with_1009_even_in_fragments()
    {
        int limit = Server.Service.Options.MaxFrameBytes;
        await using ChatClient whole = await Server.ConnectAsync("lobby", "ada");
        await whole.SendJsonAsync(JsonSerializer.Serialize(new { text = new string('x', limit) }));
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await whole.WaitClosedAsync());
        Assert.Equal($"A message has at most {limit} bytes.", whole.CloseReason);

        // The same size in small fragments, none of them large.
        await using ChatClient fragments = await Server.ConnectAsync("lobby", "bob");
        byte[] chunk = Encoding.UTF8.GetBytes(new string('y', 512));
        for (int sent = 0; sent <= limit; sent += chunk.Length)
        {
            await fragments.SendRawAsync(chunk, WebSocketMessageType.Text, endOfMessage: false);
        }

        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await fragments.WaitClosedAsync());
        Assert.Empty(await DatabaseFile.MessageTextsAsync(Directory.Path));
    }

    [Theory]
    [InlineData("""{"text": "unterminated""")]
    [InlineData("""not json""")]
    [InlineData("""[1, 2, 3]""")]
    [InlineData("""{"text": 42}""")]
    [InlineData("""null""")]
    public async Task Malformed_json_gets_an_error_frame_then_a_close_with_1007(string json)
    {
        await using ChatClient client = await Server.ConnectAsync("lobby", "ada");
        await client.SendJsonAsync(json);
        JsonElement error = await client.ReceiveAsync("error");
        string message = error.GetProperty("message").GetString()!;
        Assert.StartsWith("The frame is not valid JSON", message, StringComparison.Ordinal);
        Assert.DoesNotContain("Chat.", message, StringComparison.Ordinal); // no internal type named
        Assert.DoesNotContain("System.", message, StringComparison.Ordinal);
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, await client.WaitClosedAsync());
    }

    [Fact]
    public async Task Invalid_utf8_is_closed_with_1007()
    {
        await using ChatClient client = await Server.ConnectAsync("lobby", "ada");
        await client.SendRawAsync(new byte[] { 0x7b, 0xff, 0xfe, 0x7d }, WebSocketMessageType.Text);
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, await client.WaitClosedAsync());
        await Server.WaitForConnectionsAsync(count => count == 0);
    }

    [Theory]
    [InlineData("""{"text": ""}""", "needs a text")]
    [InlineData("""{"text": "  \n "}""", "needs a text")]
    [InlineData("""{"text": "nul \u0000"}""", "control characters")]
    [InlineData("""{"type": "shout", "text": "hi"}""", "Unknown frame type 'shout'")]
    public async Task An_invalid_message_gets_an_error_frame_and_the_connection_stays_open(string json, string says)
    {
        await using ChatClient client = await Server.ConnectAsync("lobby", "ada");
        await client.SendJsonAsync(json);
        JsonElement error = await client.ReceiveAsync();
        Assert.Equal("error", ChatClient.TypeOf(error));
        Assert.Contains(says, error.GetProperty("message").GetString(), StringComparison.Ordinal);

        await client.SendAsync("a fine one");
        Assert.Equal("ack", ChatClient.TypeOf(await client.ReceiveAsync()));
        Assert.Equal(["a fine one"], await DatabaseFile.MessageTextsAsync(Directory.Path));
    }

    [Fact]
    public async Task A_text_over_the_length_limit_gets_an_error_frame()
    {
        int limit = Server.Service.Options.MaxMessageLength;
        await using ChatClient client = await Server.ConnectAsync("lobby", "ada");
        await client.SendAsync(new string('x', limit + 1));
        JsonElement error = await client.ReceiveAsync("error");
        Assert.Contains($"at most {limit} characters", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, Server.Service.Hub.Count);
    }

    [Fact]
    public async Task A_client_that_closes_gets_its_close_echoed_and_is_gone()
    {
        await using ChatClient client = await Server.ConnectAsync("lobby", "ada");
        await client.CloseAsync();
        Assert.Equal(WebSocketCloseStatus.NormalClosure, await client.Closed);
        await Server.WaitForConnectionsAsync(count => count == 0);
    }
}
