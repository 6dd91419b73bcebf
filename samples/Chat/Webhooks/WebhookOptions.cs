namespace Chat.Webhooks;

/// <summary>How webhooks are delivered: section <c>Webhooks</c> of the configuration.</summary>
internal sealed class WebhookOptions
{
    public const string Section = "Webhooks";

    /// <summary>Deliveries running at once.</summary>
    public int Workers { get; set; } = 4;

    /// <summary>Attempts per delivery; after the last failed one the job is marked failed and kept in the outbox.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>The deadline of one attempt: the request is cancelled, and awaited, when it passes.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The wait after the first failed attempt; it doubles after each further one.</summary>
    public TimeSpan BackoffBase { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two attempts.</summary>
    public TimeSpan BackoffMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Jobs taken from the outbox at a time.</summary>
    public int BatchSize { get; set; } = 100;

    /// <summary>
    /// On a database that several nodes share: how much longer than <see cref="AttemptTimeout"/> a node's claim on a
    /// job lasts, the time it has to record the attempt's outcome. No other node takes the job meanwhile; the claims
    /// of a node that dies run out after <see cref="AttemptTimeout"/> and this.
    /// </summary>
    public TimeSpan ClaimGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a node's claim on a job lasts, from the moment it claims it.</summary>
    public TimeSpan ClaimTimeout => AttemptTimeout + ClaimGrace;

    public IEnumerable<string> Validate()
    {
        if (Workers is < 1 or > 256)
        {
            yield return "Webhooks:Workers must be between 1 and 256.";
        }

        if (MaxAttempts is < 1 or > 100)
        {
            yield return "Webhooks:MaxAttempts must be between 1 and 100.";
        }

        if (AttemptTimeout <= TimeSpan.Zero)
        {
            yield return "Webhooks:AttemptTimeout must be positive.";
        }

        if (BackoffBase < TimeSpan.Zero || BackoffMax < BackoffBase)
        {
            yield return "Webhooks:BackoffBase must not be negative and Webhooks:BackoffMax must be at least BackoffBase.";
        }

        if (BatchSize is < 1 or > 10_000)
        {
            yield return "Webhooks:BatchSize must be between 1 and 10000.";
        }

        if (ClaimGrace <= TimeSpan.Zero)
        {
            yield return "Webhooks:ClaimGrace must be positive.";
        }
    }
}
