namespace Chat.Storage;

/// <summary>A committed message; its id increases with every message stored. <see cref="At"/> is UTC.</summary>
internal sealed record StoredMessage(long Id, string Room, string Name, string Text, DateTime At);

/// <summary>A room that has messages.</summary>
internal sealed record RoomSummary(string Name, long Messages, long LastMessageId);

/// <summary>A URL that receives every message of a room. <see cref="Secret"/>, the key of its deliveries' signatures,
/// is shown once, in the answer that created it, and null everywhere else.</summary>
internal sealed record WebhookRegistration(
    long Id,
    string Room,
    string Url,
    DateTime CreatedAt,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    string? Secret = null);

/// <summary>One delivery of one message to one webhook, waiting in the outbox; signed with <see cref="Secret"/>, the
/// webhook's (null for a webhook registered before deliveries were signed); traced as a child of its message's commit,
/// whose W3C trace context is <see cref="TraceParent"/> (null when the commit was not traced).</summary>
internal sealed record OutboxJob(long Id, long MessageId, string Url, string Payload, int Attempts, string? Secret, string? TraceParent);

/// <summary>The outbox by state.</summary>
internal sealed record OutboxCounts(long Pending, long Delivered, long Failed);
