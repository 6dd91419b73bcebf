using System.Net.WebSockets;
using System.Text.Json;
using Chat.Realtime;
using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests.Realtime;

public sealed class FloodTests : ServiceTest
{
    // Each test starts its own server, with its own budgets.
    public override Task InitializeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_client_that_sends_more_than_its_budget_is_closed_with_1008()
    {
        // The clock stands still: the burst is all a client has.
        ChatServer server = await StartServerAsync(settings: ["Chat:ReceiveBurst=5", "Chat:ReceiveFramesPerSecond=1"]);
        await using ChatClient flooder = await server.ConnectAsync("lobby", "flooder");
        await using ChatClient bystander = await server.ConnectAsync("lobby", "bystander");
        for (int i = 1; i <= 5; i++)
        {
            await flooder.SendAsync($"message {i}");
            await flooder.ReceiveAsync("ack");
        }

        await flooder.SendAsync("one too many");
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await flooder.WaitClosedAsync());
        Assert.StartsWith("Too many messages", flooder.CloseReason, StringComparison.Ordinal);
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"message {i}"), await DatabaseFile.MessageTextsAsync(Directory.Path));

        // The others go on.
        await server.WaitForConnectionsAsync(count => count == 1);
        await server.PostAsync("lobby", "ada", "still here");
        for (int i = 1; i <= 5; i++)
        {
            await bystander.ReceiveAsync("message");
        }

        Assert.Equal("still here", (await bystander.ReceiveAsync("message")).GetProperty("text").GetString());
    }

    [Fact]
    public async Task The_budget_refills_with_time()
    {
        ChatServer server = await StartServerAsync(settings: ["Chat:ReceiveBurst=2", "Chat:ReceiveFramesPerSecond=1"]);
        await using ChatClient client = await server.ConnectAsync("lobby", "ada");
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < 2; i++)
            {
                await client.SendAsync($"round {round} message {i}");
                await client.ReceiveAsync("ack");
            }

            server.Time.Advance(TimeSpan.FromSeconds(2)); // two frames' worth
        }

        Assert.Equal(1, server.Service.Hub.Count);
        Assert.Equal(6, (await DatabaseFile.MessageTextsAsync(Directory.Path)).Count);
    }

    [Fact]
    public async Task A_client_that_does_not_read_is_closed_with_1008_and_the_others_get_everything()
    {
        ChatServer server = await StartServerAsync(settings: ["Chat:SendQueueCapacity=4"]);

        // A small receive window: the frames the slow client does not read soon fill what TCP can hold.
        await using ChatClient slow = await ChatClient.ConnectAsync(server.WebSocketUri("lobby", "slow"), receive: false, receiveBufferSize: 4096);
        await using ChatClient fast = await server.ConnectAsync("lobby", "fast");
        await server.WaitForConnectionsAsync(count => count == 2);
        ChatConnection slowOnServer = server.Service.Hub.Members("lobby").Single(member => member.Name == "slow");

        // In step with the fast client, which reads each message before the next is posted: only the slow one falls behind.
        string text = new('x', server.Service.Options.MaxMessageLength);
        int posted = 0;
        long previous = 0;
        while (slowOnServer.CloseStatus is null)
        {
            Assert.True(posted < 5_000, "The slow client was never closed.");
            StoredMessage message = await server.PostAsync("lobby", "ada", text);
            posted++;
            JsonElement frame = await fast.ReceiveAsync("message");
            Assert.Equal(message.Id, frame.GetProperty("id").GetInt64());
            Assert.True(message.Id > previous);
            previous = message.Id;
        }

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, slowOnServer.CloseStatus);

        // Once the slow client reads, it finds the close frame after what was already on its way.
        slow.StartReceiving();
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await slow.WaitClosedAsync());
        Assert.StartsWith("Too slow", slow.CloseReason, StringComparison.Ordinal);
        Assert.True(slow.Drain().Count < posted);
        await server.WaitForConnectionsAsync(count => count == 1);
        Assert.Null(server.Service.Hub.Members("lobby").Single().CloseStatus); // the fast one is still open
    }

    [Fact]
    public async Task A_ping_flood_is_closed_with_1008_and_a_client_that_goes_on_is_dropped_without_waiting_for_the_close()
    {
        ChatServer server = await StartServerAsync(settings: ["Chat:ReceiveBurst=5", "Chat:ReceiveFramesPerSecond=1"]);
        await using RawWebSocket flooder = await RawWebSocket.ConnectAsync(server.WebSocketUri("lobby", "flooder"));

        // Pings the socket answers by itself, never handing them to the service: counted all the same.
        for (int i = 0; i < 6; i++)
        {
            await flooder.SendFrameAsync(opcode: 9, fin: true, []);
        }

        Assert.Equal(1008, await flooder.ReadUntilCloseAsync());

        // Going on, instead of answering the close, ends the connection at once: the clock (fake, standing still) never
        // reaches the close timeout, and the socket answers no more pings. The drop may cut the flood short.
        int sent = await flooder.SendFramesUntilDroppedAsync(opcode: 9, count: 200);

        await server.WaitForConnectionsAsync(count => count == 0);
        Assert.True(sent >= 5, $"The connection was dropped after {sent} more pings, before a burst more.");
        Assert.Null(await flooder.ReadUntilCloseAsync()); // no more frames: the connection was dropped
    }

    [Fact]
    public async Task A_flood_of_empty_fragments_is_counted_against_the_budget_and_closed_with_1008()
    {
        ChatServer server = await StartServerAsync(settings: ["Chat:ReceiveBurst=5", "Chat:ReceiveFramesPerSecond=1"]);
        await using RawWebSocket flooder = await RawWebSocket.ConnectAsync(server.WebSocketUri("lobby", "flooder"));

        // A text message that never ends: an empty first fragment, then empty continuations.
        await flooder.SendFrameAsync(opcode: 1, fin: false, []);
        for (int i = 0; i < 5; i++)
        {
            await flooder.SendFrameAsync(opcode: 0, fin: false, []);
        }

        Assert.Equal(1008, await flooder.ReadUntilCloseAsync());
        await flooder.SendFrameAsync(opcode: 8, fin: true, [0x03, 0xF0]); // the close handshake's answer: 1008
        await server.WaitForConnectionsAsync(count => count == 0);
        Assert.Empty(await DatabaseFile.MessageTextsAsync(Directory.Path));
    }
}
