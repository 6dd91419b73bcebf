using System.Diagnostics;

namespace Chat.Telemetry;

/// <summary>
/// The service's spans, on <see cref="ActivitySource"/> <see cref="TelemetryServices.Name"/>: a message from a
/// WebSocket is <c>chat.receive</c>, its transaction inside it <c>chat.commit</c>, and the ack and broadcast after the
/// commit <c>chat.broadcast</c>, a child of the commit wherever it runs. Nothing is made without a listener.
/// </summary>
internal static class ChatTelemetry
{
    public const string RoomTag = "chat.room";
    public const string MessageIdTag = "chat.message.id";
    public const string RecipientsTag = "chat.broadcast.recipients";

    public static readonly ActivitySource Source = new(TelemetryServices.Name);
}
