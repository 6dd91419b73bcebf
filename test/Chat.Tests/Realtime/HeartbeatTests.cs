using System.Net.WebSockets;
using System.Text.Json;
using Chat.Tests.Support;

namespace Chat.Tests.Realtime;

public sealed class HeartbeatTests : ServiceTest
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(3);

    // Each test starts its own server, with its own timings.
    public override Task InitializeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_client_that_goes_silent_is_aborted_once_the_silence_timeout_has_passed()
    {
        ChatServer server = await StartAsync(silence: TimeSpan.FromSeconds(12));
        await using ChatClient silent = await server.ConnectAsync("lobby", "ghost", answerPings: false);

        // 5 s and 10 s: silent, but not yet for 12 s; each tick pings.
        await TickAsync(server, 1);
        await silent.WaitForPingAsync();
        await TickAsync(server, 2);
        await silent.WaitForPingAsync();
        Assert.Equal(1, server.Service.Hub.Count);

        // 15 s: silent for longer than 12 s.
        await TickAsync(server, 3);
        await server.WaitForConnectionsAsync(count => count == 0);
        Assert.Null(await silent.Closed.WaitAsync(ChatServer.Patience)); // aborted: no close frame
        Assert.Equal(2, silent.Pings);
    }

    [Fact]
    public async Task A_client_that_is_heard_from_stays_connected_past_many_silence_timeouts()
    {
        ChatServer server = await StartAsync(silence: TimeSpan.FromSeconds(12));
        await using ChatClient talker = await server.ConnectAsync("lobby", "talker");
        for (int tick = 1; tick <= 8; tick++)
        {
            await TickAsync(server, tick);
            await talker.WaitForPingAsync();

            // The pong went out before the ping was counted; the ack of a message after it shows the server read both.
            await talker.SendAsync($"still here {tick}");
            await talker.ReceiveAsync("ack");
        }

        Assert.Equal(1, server.Service.Hub.Count);
        Assert.Equal(8, talker.Pings);
        Assert.DoesNotContain(talker.Drain(), frame => ChatClient.TypeOf(frame) == "error");
    }

    [Fact]
    public async Task A_pong_is_taken_quietly()
    {
        ChatServer server = await StartAsync(silence: TimeSpan.FromSeconds(12));
        await using ChatClient client = await server.ConnectAsync("lobby", "ada");
        await client.SendJsonAsync("""{"type":"pong"}""");
        await client.SendAsync("after the pong");
        JsonElement first = await client.ReceiveAsync();
        Assert.Equal("ack", ChatClient.TypeOf(first));
    }

    [Fact]
    public async Task A_client_that_never_answers_a_close_frame_is_aborted_after_the_close_timeout()
    {
        ChatServer server = await StartAsync(silence: TimeSpan.FromSeconds(60));
        await using ChatClient deaf = await server.ConnectAsync("lobby", "deaf", answerPings: false);

        // A binary frame makes the server close; the client never answers the close frame.
        deaf.StopAnsweringClose();
        await deaf.SendRawAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary);
        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, await deaf.WaitClosedAsync());
        await server.Time.TimersCreated(CloseTimeout, 1).WaitAsync(ChatServer.Patience);
        Assert.Equal(1, server.Service.Hub.Count); // waiting for the answer

        server.Time.Advance(CloseTimeout);
        await server.WaitForConnectionsAsync(count => count == 0);
    }

    private Task<ChatServer> StartAsync(TimeSpan silence) =>
        StartServerAsync(
            settings:
            [
                $"Chat:HeartbeatInterval={Interval}",
                $"Chat:SilenceTimeout={silence}",
                $"Chat:CloseTimeout={CloseTimeout}",
            ]);

    // Advances the clock to heartbeat tick n once the heartbeat waits for it (the one connection's n-th wait).
    private static async Task TickAsync(ChatServer server, int tick)
    {
        await server.Time.TimersCreated(Interval, tick).WaitAsync(ChatServer.Patience);
        server.Time.Advance(Interval);
    }
}
