using System.Buffers;
using System.Text.Json;
using Chat.Storage;

namespace Chat.Realtime;

/// <summary>The server's WebSocket frames, as UTF-8 JSON: written once, sent to every recipient as they are.</summary>
internal static class Frames
{
    public static readonly ReadOnlyMemory<byte> Ping = """{"type":"ping"}"""u8.ToArray();

    /// <summary><c>{"type":"message","id":17,"room":"lobby","name":"ada","text":"...","at":"2026-...Z"}</c></summary>
    public static ReadOnlyMemory<byte> Message(StoredMessage message) => Write(message, static (writer, m) =>
    {
        writer.WriteString("type", "message");
        writer.WriteNumber("id", m.Id);
        writer.WriteString("room", m.Room);
        writer.WriteString("name", m.Name);
        writer.WriteString("text", m.Text);
        writer.WriteString("at", m.At);
    });

    /// <summary><c>{"type":"ack","id":17}</c>: the sender's message is committed.</summary>
    public static ReadOnlyMemory<byte> Ack(long id) => Write(id, static (writer, i) =>
    {
        writer.WriteString("type", "ack");
        writer.WriteNumber("id", i);
    });

    /// <summary><c>{"type":"error","message":"..."}</c></summary>
    public static ReadOnlyMemory<byte> Error(string message) => Write(message, static (writer, m) =>
    {
        writer.WriteString("type", "error");
        writer.WriteString("message", m);
    });

    private static byte[] Write<T>(T state, Action<Utf8JsonWriter, T> properties)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            properties(writer, state);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
