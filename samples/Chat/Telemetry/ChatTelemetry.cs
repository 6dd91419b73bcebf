using System.Diagnostics;

namespace Chat.Telemetry;

/// <summary>
/// The service's spans, on <see cref="ActivitySource"/> <see cref="TelemetryServices.Name"/>: a message from a
/// WebSocket is <c>chat.receive</c>, its transaction inside it <c>chat.commit</c>, the ack and broadcast after the
/// commit <c>chat.broadcast</c>, and each attempt to deliver it to a webhook <c>chat.webhook.deliver</c>: the last two
/// are children of the commit wherever and whenever they run (the outbox keeps the commit's trace context for the
/// deliveries). Nothing is made without a listener.
/// </summary>
internal static class ChatTelemetry
{
    public const string RoomTag = "chat.room";
    public const string MessageIdTag = "chat.message.id";
    public const string RecipientsTag = "chat.broadcast.recipients";
    public const string JobIdTag = "chat.webhook.job";
    public const string AttemptTag = "chat.webhook.attempt";

    public static readonly ActivitySource Source = new(TelemetryServices.Name);
}
