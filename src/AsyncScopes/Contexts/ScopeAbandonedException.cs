namespace AsyncScopes;

/// <summary>
/// What an exit sees when a scope in <c>await using</c> form is disposed before its body said it finished
/// (<see cref="AsyncExitStack.Complete"/>): the body most likely threw, or returned early.
/// </summary>
/// <remarks>
/// This exception is synthetic: it is handed to exits so that they roll back rather than commit, and it is never
/// thrown out of the <c>DisposeAsync</c> that created it.
/// </remarks>
public sealed class ScopeAbandonedException : Exception
{
    private const string DefaultMessage =
        "The scope was disposed before its body completed: the body threw or returned early, so its work is abandoned.";

    /// <summary>Creates the exception with the default message.</summary>
    public ScopeAbandonedException()
        : base(DefaultMessage)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was abandoned.</param>
    public ScopeAbandonedException(string? message)
        : base(message ?? DefaultMessage)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What was abandoned.</param>
    /// <param name="innerException">The cause.</param>
    public ScopeAbandonedException(string? message, Exception? innerException)
        : base(message ?? DefaultMessage, innerException)
    {
    }
}
