using System.Text.Json;

namespace Chat.Tests.Support;

/// <summary>
/// The messages clients send to one room and every frame each client receives, in order: a test checks that each
/// client saw every message once, in id order, and each sender its ack before its own copy.
/// </summary>
internal sealed class Conversation
{
    private readonly Dictionary<ChatClient, List<JsonElement>> _received;

    public Conversation(params ChatClient[] clients)
    {
        _received = clients.ToDictionary(client => client, _ => new List<JsonElement>());
    }

    /// <summary>What was sent, with the ids the acks gave, in the order sent.</summary>
    public List<(string Name, string Text, long Id)> Sent { get; } = [];

    /// <summary>Sends a message and reads the sender's frames up to its own copy of it, which must come after its
    /// ack.</summary>
    /// <returns>The stored message's id.</returns>
    public async Task<long> SendAsync(ChatClient sender, string name, string text)
    {
        await sender.SendAsync(text);
        long? acked = null;
        while (true)
        {
            JsonElement frame = await sender.ReceiveAsync();
            _received[sender].Add(frame);
            if (ChatClient.TypeOf(frame) == "ack")
            {
                Assert.Null(acked);
                acked = frame.GetProperty("id").GetInt64();
            }
            else if (ChatClient.TypeOf(frame) == "message" && frame.GetProperty("text").GetString() == text)
            {
                Assert.True(acked is not null, $"'{text}' came back before its ack.");
                Assert.Equal(acked, frame.GetProperty("id").GetInt64());
                Sent.Add((name, text, acked.Value));
                return acked.Value;
            }
        }
    }

    /// <summary>Reads <paramref name="client"/>'s frames until it has received as many messages as were sent.</summary>
    /// <returns>The messages it received, in order.</returns>
    public async Task<List<(string Name, string Text, long Id)>> ReceivedAsync(ChatClient client)
    {
        List<JsonElement> frames = _received[client];
        while (frames.Count(IsMessage) < Sent.Count)
        {
            frames.Add(await client.ReceiveAsync());
        }

        return [.. frames.Where(IsMessage).Select(frame =>
            (frame.GetProperty("name").GetString()!, frame.GetProperty("text").GetString()!, frame.GetProperty("id").GetInt64()))];
    }

    private static bool IsMessage(JsonElement frame) => ChatClient.TypeOf(frame) == "message";
}
