namespace AsyncScopes;

/// <summary>
/// The <see cref="System.Threading.RateLimiting.RateLimiter"/> shared through <see cref="TaskScopeOptions.Limiter"/> or
/// <see cref="WorkQueueOptions{T}.Limiter"/> refused a permit (a <see cref="System.Threading.RateLimiting.ConcurrencyLimiter"/>
/// whose queue is full, say): the child, or the item, did not run, and this is its failure.
/// </summary>
public sealed class PermitRejectedException : Exception
{
    private const string DefaultMessage = "The limiter refused a permit: the work did not run.";

    /// <summary>Creates the exception with the default message.</summary>
    public PermitRejectedException()
        : base(DefaultMessage)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was refused.</param>
    public PermitRejectedException(string? message)
        : base(message ?? DefaultMessage)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What was refused.</param>
    /// <param name="innerException">The cause.</param>
    public PermitRejectedException(string? message, Exception? innerException)
        : base(message ?? DefaultMessage, innerException)
    {
    }

    /// <summary>When the limiter said a permit may be free again (its lease's
    /// <see cref="System.Threading.RateLimiting.MetadataName.RetryAfter"/>), if it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
