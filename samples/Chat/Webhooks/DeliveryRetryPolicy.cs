using System.Net;
using System.Net.Http.Headers;

namespace Chat.Webhooks;

/// <summary>
/// What a failed delivery attempt leads to, in one place: which failures are tried again, and after how long.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>A 2xx answer: delivered (not a failure; never seen here).</item>
/// <item>Tried again: 408, 429 and 5xx answers, no answer within the attempt's deadline, and network failures (no
/// connection, a connection reset, a failed name lookup).</item>
/// <item>Failed at once, whatever attempts are left: any other answer (3xx, since redirects are not followed; 4xx
/// other than 408 and 429), and a destination that webhooks may not be sent to (<see cref="WebhookRefusedException"/>).</item>
/// </list>
/// The wait before the next attempt doubles from <see cref="WebhookOptions.BackoffBase"/> after each failure, up to
/// <see cref="WebhookOptions.BackoffMax"/>, less a random part of up to <see cref="WebhookOptions.BackoffJitter"/> of it,
/// so that the deliveries that failed together (a receiver that was down) do not all come back at the same moment. A
/// <c>Retry-After</c> the receiver sent lengthens the wait to what it asks, up to <see cref="WebhookOptions.BackoffMax"/>.
/// </remarks>
internal static class DeliveryRetryPolicy
{
    /// <summary>Whether the delivery is tried again after <paramref name="failure"/>, attempts permitting.</summary>
    public static bool IsRetried(Exception failure) => failure switch
    {
        WebhookRefusedException => false,
        WebhookStatusException { StatusCode: var status } => IsRetried(status),
        HttpRequestException { InnerException: WebhookRefusedException } => false,
        _ => true, // no answer in time (TimeoutException), or the network failed (HttpRequestException)
    };

    /// <summary>Whether an answer with <paramref name="status"/> (not 2xx) is tried again: 408, 429 and 5xx.</summary>
    public static bool IsRetried(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)status >= 500;

    /// <summary>
    /// The wait before attempt <paramref name="failedAttempts"/> + 1: <see cref="Backoff"/> less
    /// <paramref name="jitterSample"/> × <see cref="WebhookOptions.BackoffJitter"/> of it, then at least the
    /// <c>Retry-After</c> of <paramref name="failure"/>, and at most <see cref="WebhookOptions.BackoffMax"/>.
    /// </summary>
    /// <param name="failedAttempts">The attempts made so far, all failed: 1 after the first.</param>
    /// <param name="failure">The last attempt's failure.</param>
    /// <param name="options">Valid webhook settings.</param>
    /// <param name="jitterSample">A number from 0 (no jitter) to 1 (the most): <see cref="Random.NextDouble"/>.</param>
    public static TimeSpan NextWait(int failedAttempts, Exception failure, WebhookOptions options, double jitterSample)
    {
        TimeSpan backoff = Backoff(failedAttempts, options.BackoffBase, options.BackoffMax);
        TimeSpan wait = backoff - (backoff * (options.BackoffJitter * Math.Clamp(jitterSample, 0, 1)));
        if (failure is WebhookStatusException { RetryAfter: { } retryAfter } && retryAfter > wait)
        {
            wait = retryAfter;
        }

        return wait > options.BackoffMax ? options.BackoffMax : wait;
    }

    /// <summary>The wait before attempt <paramref name="failedAttempts"/> + 1 without jitter: the base, doubled after
    /// each further failure, at most the maximum.</summary>
    public static TimeSpan Backoff(int failedAttempts, TimeSpan backoffBase, TimeSpan backoffMax)
    {
        double ticks = backoffBase.Ticks * Math.Pow(2, Math.Clamp(failedAttempts - 1, 0, 62));
        return ticks >= backoffMax.Ticks ? backoffMax : TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>The wait a <c>Retry-After</c> header asks for at <paramref name="now"/>: a delay, or a date; null when
    /// there is none or it lies in the past.</summary>
    public static TimeSpan? RetryAfter(RetryConditionHeaderValue? header, DateTimeOffset now)
    {
        TimeSpan? wait = header switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - now,
            _ => null,
        };
        return wait > TimeSpan.Zero ? wait : null;
    }
}

/// <summary>A receiver answered a delivery with a status other than 2xx.</summary>
internal sealed class WebhookStatusException(HttpStatusCode statusCode, TimeSpan? retryAfter)
    : Exception($"HTTP {(int)statusCode}")
{
    /// <summary>The status of the answer.</summary>
    public HttpStatusCode StatusCode { get; } = statusCode;

    /// <summary>The wait the answer's <c>Retry-After</c> asked for, if any.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
