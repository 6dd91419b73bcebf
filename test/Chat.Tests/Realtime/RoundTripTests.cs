using System.Text.Json;
using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests.Realtime;

public sealed class RoundTripTests : ServiceTest
{
    [Fact]
    public async Task Two_clients_in_a_room_see_each_others_messages_in_the_same_order_and_a_third_room_sees_none()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");
        await using ChatClient eve = await Server.ConnectAsync("other", "eve");

        // Interleaved sends, each acknowledged before the sender sends again.
        var sent = new List<(string Name, string Text, long Id)>();
        for (int i = 0; i < 10; i++)
        {
            (ChatClient sender, string name) = i % 3 == 0 ? (bob, "bob") : (ada, "ada");
            string text = $"message {i} from {name}";
            await sender.SendAsync(text);
            long id = await ReadAckAsync(sender);
            sent.Add((name, text, id));
        }

        Assert.Equal(sent.Select(m => m.Id).Order(), sent.Select(m => m.Id)); // ids increase
        Assert.Equal(sent.Count, sent.Select(m => m.Id).Distinct().Count());

        // Both see every message, their own included, in id order.
        foreach (ChatClient client in new[] { ada, bob })
        {
            var seen = new List<(string, string, long)>();
            for (int i = 0; i < sent.Count; i++)
            {
                JsonElement frame = await client.ReceiveAsync("message");
                Assert.Equal("lobby", frame.GetProperty("room").GetString());
                seen.Add(Describe(frame));
            }

            Assert.Equal(sent.Select(m => (m.Name, m.Text, m.Id)), seen);
        }

        // The other room's first frame is its own message: nothing of the lobby came before it.
        await eve.SendAsync("only here");
        JsonElement first = await eve.ReceiveAsync("ack");
        JsonElement own = await eve.ReceiveAsync("message");
        Assert.Equal("only here", own.GetProperty("text").GetString());
        Assert.Equal(first.GetProperty("id").GetInt64(), own.GetProperty("id").GetInt64());
        Assert.Empty(eve.Drain());
    }

    [Fact]
    public async Task A_client_that_reconnects_finds_the_messages_in_the_history()
    {
        await using (ChatClient ada = await Server.ConnectAsync("lobby", "ada"))
        {
            await ada.SendAsync("before the reconnect 1");
            await ReadAckAsync(ada);
            await ada.SendAsync("before the reconnect 2");
            await ReadAckAsync(ada);
            await ada.CloseAsync();
            Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, await ada.Closed);
        }

        await Server.WaitForConnectionsAsync(count => count == 0);
        await using ChatClient again = await Server.ConnectAsync("lobby", "ada");
        IReadOnlyList<StoredMessage> history = await Server.HistoryAsync("lobby");
        Assert.Equal(["before the reconnect 1", "before the reconnect 2"], history.Select(m => m.Text));
        Assert.All(history, m => Assert.Equal("ada", m.Name));

        // And the reconnected client is live again.
        await Server.PostAsync("lobby", "bob", "after the reconnect");
        JsonElement live = await again.ReceiveAsync("message");
        Assert.Equal("after the reconnect", live.GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_message_posted_over_http_is_broadcast_to_the_room_with_the_stored_id()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");
        StoredMessage stored = await Server.PostAsync("lobby", "bob", "over http");
        JsonElement frame = await ada.ReceiveAsync("message");
        Assert.Equal(stored.Id, frame.GetProperty("id").GetInt64());
        Assert.Equal("bob", frame.GetProperty("name").GetString());
        Assert.Equal(stored.At, frame.GetProperty("at").GetDateTime());
        Assert.EndsWith("Z", frame.GetProperty("at").GetString(), StringComparison.Ordinal);
    }

    // The sender's ack, with the id of the stored message.
    private static async Task<long> ReadAckAsync(ChatClient sender) =>
        (await sender.ReceiveAsync("ack")).GetProperty("id").GetInt64();

    private static (string, string, long) Describe(JsonElement frame) =>
        (frame.GetProperty("name").GetString()!, frame.GetProperty("text").GetString()!, frame.GetProperty("id").GetInt64());
}
