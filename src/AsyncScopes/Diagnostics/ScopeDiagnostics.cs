namespace AsyncScopes;

/// <summary>Process-wide diagnostics of scopes: failures nobody observed.</summary>
public static class ScopeDiagnostics
{
    /// <summary>
    /// Raised once per failure that no one observed: a child of a <see cref="TaskScope"/> failed and the scope was
    /// disposed without <see cref="TaskScope.JoinAsync"/> having been called. The sender is <see langword="null"/>.
    /// </summary>
    /// <remarks>Handlers run synchronously on the thread that disposes the scope. An exception thrown by a handler is
    /// caught and ignored, so that it cannot break the disposal; the other handlers still run.</remarks>
    public static event EventHandler<UnobservedScopeFailureEventArgs>? UnobservedFailure;

    internal static void ReportUnobserved(string? scopeName, Exception exception)
    {
        var handlers = UnobservedFailure;
        if (handlers is null)
        {
            return;
        }

        var args = new UnobservedScopeFailureEventArgs(scopeName, exception);
        foreach (var handler in handlers.GetInvocationList())
        {
            try
            {
                ((EventHandler<UnobservedScopeFailureEventArgs>)handler)(null, args);
            }
#pragma warning disable CA1031 // A diagnostics handler must not turn a disposal that never throws into one that does.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }
}
