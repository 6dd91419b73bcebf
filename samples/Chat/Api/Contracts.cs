using AsyncScopes;
using Chat.Storage;

namespace Chat.Api;

/// <summary>The body of <c>POST /api/rooms/{room}/messages</c>.</summary>
internal sealed record PostMessageRequest(string? Name, string? Text);

/// <summary>The body of <c>POST /api/webhooks</c>.</summary>
internal sealed record RegisterWebhookRequest(string? Room, string? Url);

/// <summary>A page of history, oldest first; <see cref="NextBefore"/> asks for the page before it, null on the
/// oldest page.</summary>
internal sealed record MessagePage(IReadOnlyList<StoredMessage> Messages, long? NextBefore);

/// <summary>A room: its stored messages and the clients connected to it now.</summary>
internal sealed record RoomInfo(string Name, long Messages, long LastMessageId, int Online);

/// <summary>A page of rooms, by name; <see cref="NextAfter"/> asks for the next page, null on the last.</summary>
internal sealed record RoomPage(IReadOnlyList<RoomInfo> Rooms, string? NextAfter);

/// <summary>Every error of the HTTP API.</summary>
internal sealed record ErrorResponse(string Error);

/// <summary>What <c>GET /health</c> tells anyone: <c>healthy</c>, <c>degraded</c> or <c>unhealthy</c>.</summary>
internal sealed record Liveness(string Status);

/// <summary>One check of <see cref="HealthDetails"/>: its status and why.</summary>
internal sealed record HealthCheckOutcome(string Name, string Status, string? Description);

/// <summary>What <c>GET /health/details</c> reports to the admin: every check with its reason, and the service's
/// counters; <see cref="Outbox"/> is null when the database could not be read.</summary>
internal sealed record HealthDetails(
    string Status,
    IReadOnlyList<HealthCheckOutcome> Checks,
    int Connections,
    int OpenScopes,
    PoolStatistics Writer,
    PoolStatistics Readers,
    WorkQueueStatistics Webhooks,
    OutboxCounts? Outbox,
    long WorkingSetBytes);

/// <summary>What <c>POST /debug/gc</c> reports after a full, compacting collection.</summary>
internal sealed record MemoryReport(long WorkingSetBytes, long ManagedHeapBytes, int Connections, int OpenScopes);
