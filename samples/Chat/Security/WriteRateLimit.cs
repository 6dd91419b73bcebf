using System.Globalization;
using System.Threading.RateLimiting;
using Chat.Api;
using Microsoft.AspNetCore.RateLimiting;

namespace Chat.Security;

/// <summary>
/// The limit on requests that change something (posting, webhook management), per client address: a token bucket of
/// <see cref="ChatOptions.WriteBurst"/> refilled at <see cref="ChatOptions.WritesPerSecond"/>, with ASP.NET Core's
/// rate limiting middleware. A request beyond it gets 429 with <c>Retry-After</c> and the API's JSON error.
/// </summary>
/// <remarks>Behind a reverse proxy every request comes from the proxy's address: apply the forwarded headers so that
/// the limit is per client, not one for everyone.</remarks>
internal static class WriteRateLimit
{
    /// <summary>The policy's name, for <c>RequireRateLimiting</c>.</summary>
    public const string Policy = "writes";

    public static IServiceCollection AddWriteRateLimit(this IServiceCollection services) =>
        services.AddRateLimiter(limiter =>
        {
            limiter.AddPolicy(Policy, context =>
            {
                ChatOptions options = context.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<ChatOptions>>().Value;

                // Refilled at most ten times a second, as many tokens at a time as that takes.
                int tokensPerPeriod = Math.Max(1, (int)(options.WritesPerSecond / 10));
                return RateLimitPartition.GetTokenBucketLimiter(
                    context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                    _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = options.WriteBurst,
                        TokensPerPeriod = tokensPerPeriod,
                        ReplenishmentPeriod = TimeSpan.FromSeconds(tokensPerPeriod / options.WritesPerSecond),
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    });
            });
            limiter.OnRejected = async (rejected, cancellationToken) =>
            {
                HttpContext context = rejected.HttpContext;
                if (rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retryAfter))
                {
                    context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                }

                await ChatEndpoints.Error(StatusCodes.Status429TooManyRequests, "Too many requests from this address. Wait, then try again.")
                    .ExecuteAsync(context).ConfigureAwait(false);
            };
        });
}
