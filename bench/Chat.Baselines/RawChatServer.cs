using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;

namespace Chat.Baselines;

/// <summary>
/// The fastest honest chat server: every message gets the next id of its room under the room's lock, and its frame,
/// written once, is queued for every member (the ack first for the sender) under that lock, so that every client sees
/// a room's messages in id order. A connection's frames go out through a bounded queue and one send loop; a client
/// whose queue is full is closed with 1008, as the service does.
/// </summary>
internal sealed class RawChatServer
{
    private const int SendQueueCapacity = 256; // the service's default (Chat:SendQueueCapacity)

    private readonly ConcurrentDictionary<string, Room> _rooms = new(StringComparer.Ordinal);

    public async Task AcceptAsync(HttpContext context, string room)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            return;
        }

        string name = context.Request.Query["name"].ToString();
        using WebSocket socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = new Connection(socket);
        Room members = _rooms.GetOrAdd(room, static key => new Room(key));
        members.Join(connection);
        Task sending = connection.SendLoopAsync();
        try
        {
            await ReceiveLoopAsync(connection, members, name, context.RequestAborted);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            // the client vanished
        }
        finally
        {
            members.Leave(connection);
            connection.Outgoing.Writer.TryComplete();
            await sending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private static async Task ReceiveLoopAsync(Connection connection, Room room, string name, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[4096];
        while (true)
        {
            int length = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                if (length == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                result = await connection.Socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                length += result.Count;
            }
            while (!result.EndOfMessage);

            if (result.MessageType == WebSocketMessageType.Close)
            {
                await connection.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                return;
            }

            string? text = ReadText(buffer.AsSpan(0, length));
            if (text is not null)
            {
                room.Post(connection, name, text);
            }
        }
    }

    // {"text":"..."}; anything else (a pong) is ignored.
    private static string? ReadText(ReadOnlySpan<byte> frame)
    {
        var reader = new Utf8JsonReader(frame);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("text"u8) && reader.Read())
            {
                return reader.GetString();
            }
        }

        return null;
    }

    private sealed class Room(string name)
    {
        private readonly Lock _lock = new();
        private Connection[] _members = [];
        private long _lastId;

        public void Join(Connection connection)
        {
            lock (_lock)
            {
                _members = [.. _members, connection];
            }
        }

        public void Leave(Connection connection)
        {
            lock (_lock)
            {
                _members = Array.FindAll(_members, member => !ReferenceEquals(member, connection));
            }
        }

        public void Post(Connection sender, string senderName, string text)
        {
            lock (_lock)
            {
                long id = ++_lastId;
                sender.TryPost(Frame(writer =>
                {
                    writer.WriteString("type", "ack");
                    writer.WriteNumber("id", id);
                }));
                ReadOnlyMemory<byte> message = Frame(writer =>
                {
                    writer.WriteString("type", "message");
                    writer.WriteNumber("id", id);
                    writer.WriteString("room", name);
                    writer.WriteString("name", senderName);
                    writer.WriteString("text", text);
                    writer.WriteString("at", DateTimeOffset.UtcNow);
                });
                foreach (Connection member in _members)
                {
                    member.TryPost(message);
                }
            }
        }

        private static byte[] Frame(Action<Utf8JsonWriter> properties)
        {
            var buffer = new ArrayBufferWriter<byte>(256);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                properties(writer);
                writer.WriteEndObject();
            }

            return buffer.WrittenSpan.ToArray();
        }
    }

    private sealed class Connection(WebSocket socket)
    {
        public WebSocket Socket { get; } = socket;

        public Channel<ReadOnlyMemory<byte>> Outgoing { get; } = Channel.CreateBounded<ReadOnlyMemory<byte>>(
            new BoundedChannelOptions(SendQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

        public void TryPost(ReadOnlyMemory<byte> frame)
        {
            if (!Outgoing.Writer.TryWrite(frame) && Outgoing.Writer.TryComplete())
            {
                // Too slow: closed, as the service closes a client whose queue is full.
                _ = Socket.CloseOutputAsync(WebSocketCloseStatus.PolicyViolation, "Too slow.", CancellationToken.None);
            }
        }

        public async Task SendLoopAsync()
        {
            await foreach (ReadOnlyMemory<byte> frame in Outgoing.Reader.ReadAllAsync())
            {
                await Socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            }
        }
    }
}
