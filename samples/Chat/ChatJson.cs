using System.Text.Json;
using System.Text.Json.Serialization;
using Chat.Api;
using Chat.Realtime;
using Chat.Storage;

namespace Chat;

/// <summary>The JSON of the HTTP API, of the frames clients send and of the webhooks' payloads, generated at compile
/// time, in camelCase.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true)]
[JsonSerializable(typeof(StoredMessage))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(PostMessageRequest))]
[JsonSerializable(typeof(RegisterWebhookRequest))]
[JsonSerializable(typeof(WebhookRegistration))]
[JsonSerializable(typeof(IReadOnlyList<WebhookRegistration>))]
[JsonSerializable(typeof(MessagePage))]
[JsonSerializable(typeof(RoomPage))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(Liveness))]
[JsonSerializable(typeof(HealthDetails))]
[JsonSerializable(typeof(ClientFrame))]
[JsonSerializable(typeof(MemoryReport))]
internal sealed partial class ChatJson : JsonSerializerContext;
