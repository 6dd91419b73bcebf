using System.Threading.RateLimiting;

namespace AsyncScopes;

/// <summary>What <see cref="TaskScope"/> and <see cref="WorkQueue{T}"/> share about a limiter of theirs: one permit
/// per piece of work, waited for, or refused with <see cref="PermitRejectedException"/>.</summary>
internal static class Permits
{
    /// <summary>Waits for one permit of <paramref name="limiter"/>.</summary>
    /// <param name="limiter">The shared limiter.</param>
    /// <param name="owner">The scope's or queue's name, for the refusal's message.</param>
    /// <param name="cancellationToken">Ends the wait; the limiter then gives the permit to nobody (its contract:
    /// a cancelled request leaves its queue), so none is lost.</param>
    /// <returns>The acquired lease: disposing it gives the permit back.</returns>
    /// <exception cref="PermitRejectedException">The limiter refused the permit.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired first.</exception>
    public static async ValueTask<RateLimitLease> AcquireAsync(RateLimiter limiter, string? owner, CancellationToken cancellationToken)
    {
        var lease = await limiter.AcquireAsync(1, cancellationToken).ConfigureAwait(false);
        if (lease.IsAcquired)
        {
            return lease;
        }

        using (lease)
        {
            string reason = lease.TryGetMetadata(MetadataName.ReasonPhrase, out string? phrase) && phrase is not null ? $" ({phrase})" : string.Empty;
            throw new PermitRejectedException(
                $"The limiter of {(owner is null ? "the work" : "'" + owner + "'")} refused a permit{reason}: the work did not run.")
            {
                RetryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retryAfter) ? retryAfter : null,
            };
        }
    }
}
