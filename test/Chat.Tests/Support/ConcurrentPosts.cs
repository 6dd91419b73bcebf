using System.Text.Json;

namespace Chat.Tests.Support;

/// <summary>
/// Clients in two rooms, spread over one or more nodes, each sending its messages without waiting for their acks,
/// while the <see cref="BatchHook"/> fails some of them, chosen at random from a seed: what every client must see.
/// </summary>
internal static class ConcurrentPosts
{
    /// <summary>Settings a node needs for the clients' bursts.</summary>
    public static readonly string[] Settings = ["Chat:ReceiveBurst=100", "Chat:ReceiveFramesPerSecond=100"];

    private const int Clients = 8;
    private const int MessagesEach = 25;

    public static async Task RunAsync(IReadOnlyList<ChatServer> nodes, BatchHook hook, int seed)
    {
        var random = new Random(seed);
        string[] rooms = ["red", "blue"];
        var clients = new List<(ChatClient Client, string Room, string[] Texts)>();
        try
        {
            for (int i = 0; i < Clients; i++)
            {
                // Each room has clients on every node.
                string room = rooms[i / nodes.Count % rooms.Length];
                ChatClient client = await nodes[i % nodes.Count].ConnectAsync(room, $"client{i}");
                string[] texts = [.. Enumerable.Range(0, MessagesEach).Select(j => $"{seed}:{i}:{j}")];
                clients.Add((client, room, texts));
            }

            var failing = new HashSet<string>(clients.SelectMany(c => c.Texts).Where(_ => random.NextDouble() < 0.2));
            foreach (string text in failing)
            {
                hook.Fail(text);
            }

            await Task.WhenAll(clients.Select(async c =>
            {
                foreach (string text in c.Texts)
                {
                    await c.Client.SendAsync(text);
                }
            }));

            // A client's messages are answered in the order it sent them: an ack, or an error when not stored.
            var received = new List<(string Room, List<(long Id, string Text)> Messages)>();
            var acked = new Dictionary<string, List<(long Id, string Text)>>(rooms.Select(r => KeyValuePair.Create(r, new List<(long, string)>())));
            foreach ((ChatClient client, string room, string[] texts) in clients)
            {
                var messages = new List<(long Id, string Text)>();
                int answered = 0;
                while (answered < texts.Length)
                {
                    JsonElement frame = await client.ReceiveAsync();
                    switch (ChatClient.TypeOf(frame))
                    {
                        case "ack":
                            Assert.DoesNotContain(texts[answered], failing);
                            acked[room].Add((frame.GetProperty("id").GetInt64(), texts[answered++]));
                            break;
                        case "error":
                            Assert.Contains(texts[answered++], failing);
                            break;
                        case "message":
                            messages.Add((frame.GetProperty("id").GetInt64(), frame.GetProperty("text").GetString()!));
                            break;
                        default:
                            Assert.Fail($"Unexpected frame: {frame}");
                            break;
                    }
                }

                received.Add((room, messages));
            }

            foreach ((string room, List<(long Id, string Text)> messages) in received)
            {
                List<(long Id, string Text)> expected = [.. acked[room].OrderBy(m => m.Id)];
                ChatClient client = clients[received.FindIndex(r => ReferenceEquals(r.Messages, messages))].Client;
                while (messages.Count < expected.Count)
                {
                    JsonElement frame = await client.ReceiveAsync("message");
                    messages.Add((frame.GetProperty("id").GetInt64(), frame.GetProperty("text").GetString()!));
                }

                // Every client of the room, on any node: exactly the acknowledged messages, each once, in id order.
                Assert.Equal(expected, messages);
                Assert.DoesNotContain(client.Drain(), frame => ChatClient.TypeOf(frame) == "message");
            }

            foreach (string room in rooms)
            {
                IReadOnlyList<Chat.Storage.StoredMessage> history = await nodes[0].HistoryAsync(room, limit: 200);
                Assert.Equal(acked[room].OrderBy(m => m.Id), history.Select(m => (m.Id, m.Text)));
            }
        }
        finally
        {
            foreach ((ChatClient client, _, _) in clients)
            {
                await client.DisposeAsync();
            }
        }
    }
}
