using System.Text.Json;
using Chat.Storage;

namespace Chat.Webhooks;

/// <summary>
/// The body of a message's webhook deliveries: the message as JSON,
/// <c>{"id":17,"room":"lobby","name":"ada","text":"...","at":"2026-...Z"}</c>. The store writes it once, with the
/// message, into each of its outbox jobs, so that every attempt, on any node, sends and signs the same bytes.
/// </summary>
internal static class WebhookPayload
{
    public static string Write(StoredMessage message) => JsonSerializer.Serialize(message, ChatJson.Default.StoredMessage);
}
