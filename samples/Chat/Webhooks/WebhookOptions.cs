using System.Net;

namespace Chat.Webhooks;

/// <summary>How webhooks are delivered: section <c>Webhooks</c> of the configuration.</summary>
internal sealed class WebhookOptions
{
    public const string Section = "Webhooks";

    /// <summary>Deliveries running at once.</summary>
    public int Workers { get; set; } = 4;

    /// <summary>
    /// Deliveries running at once to one destination (a scheme, host and port), so that a slow receiver holds no more
    /// than these of the <see cref="Workers"/>; half of them (at least one) when not set.
    /// </summary>
    public int? MaxPerDestination { get; set; }

    /// <summary><see cref="MaxPerDestination"/>, or its default.</summary>
    public int EffectiveMaxPerDestination => MaxPerDestination ?? Math.Max(1, Workers / 2);

    /// <summary>Attempts per delivery; after the last failed one the job is marked failed and kept in the outbox.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>The deadline of one attempt: the request is cancelled, and awaited, when it passes.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The wait after the first failed attempt; it doubles after each further one.</summary>
    public TimeSpan BackoffBase { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two attempts.</summary>
    public TimeSpan BackoffMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The largest part of each wait, from 0 to 1, taken off at random (<see cref="DeliveryRetryPolicy"/>),
    /// so that deliveries that failed together do not all come back at once; 0 waits the exact backoff.</summary>
    public double BackoffJitter { get; set; } = 0.25;

    /// <summary>
    /// How much longer than <see cref="AttemptTimeout"/> a node's claim on a job lasts, the time it has to record the
    /// attempt's outcome. No one takes the job meanwhile; on a database that several nodes share, the claims of a node
    /// that dies run out after <see cref="AttemptTimeout"/> and this (on SQLite, the next start voids them).
    /// </summary>
    public TimeSpan ClaimGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a node's claim on a job lasts, from the moment it claims it.</summary>
    public TimeSpan ClaimTimeout => AttemptTimeout + ClaimGrace;

    /// <summary>
    /// Networks, in CIDR notation (<c>10.1.0.0/16</c>, <c>127.0.0.1/32</c>, <c>fd00::/8</c>), that webhooks may be sent
    /// to although they are loopback, private or otherwise internal (<see cref="WebhookDestinations"/>). Empty by
    /// default: webhooks go to public addresses only. The service's own listening endpoints stay refused.
    /// </summary>
    public string[] AllowedNetworks { get; set; } = [];

    /// <summary>The most webhooks one room may have; registering one more answers 409.</summary>
    public int MaxPerRoom { get; set; } = 10;

    /// <summary><see cref="AllowedNetworks"/>, parsed; valid once <see cref="Validate"/> found nothing wrong.</summary>
    public IReadOnlyList<IPNetwork> ParsedAllowedNetworks =>
        [.. AllowedNetworks.Select(network => IPNetwork.TryParse(network, out IPNetwork parsed) ? parsed : default)];

    public IEnumerable<string> Validate()
    {
        if (Workers is < 1 or > 256)
        {
            yield return "Webhooks:Workers must be between 1 and 256.";
        }

        if (MaxPerDestination is { } perDestination && (perDestination < 1 || perDestination > Workers))
        {
            yield return "Webhooks:MaxPerDestination must be between 1 and Webhooks:Workers.";
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

        if (!(BackoffJitter is >= 0 and <= 1))
        {
            yield return "Webhooks:BackoffJitter must be between 0 and 1.";
        }

        if (ClaimGrace <= TimeSpan.Zero)
        {
            yield return "Webhooks:ClaimGrace must be positive.";
        }

        foreach (string network in AllowedNetworks.Where(network => !IPNetwork.TryParse(network, out _)))
        {
            yield return $"Webhooks:AllowedNetworks: '{network}' is not a network in CIDR notation, such as 10.1.0.0/16.";
        }

        if (MaxPerRoom is < 1 or > 1_000)
        {
            yield return "Webhooks:MaxPerRoom must be between 1 and 1000.";
        }
    }
}
