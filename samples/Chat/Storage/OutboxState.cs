namespace Chat.Storage;

/// <summary>The states of an outbox job, as the <c>state</c> column holds them. A job is <see cref="Pending"/> until
/// it is <see cref="Delivered"/> (a 2xx answer) or <see cref="Failed"/> (no attempt left, a failure that is not retried,
/// or its webhook removed); both are final.</summary>
internal static class OutboxState
{
    public const string Pending = "pending";

    public const string Delivered = "delivered";

    public const string Failed = "failed";
}
