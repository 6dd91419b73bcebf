namespace AsyncScopes;

/// <summary>A failure that nobody observed: see <see cref="ScopeDiagnostics.UnobservedFailure"/> for where they come from.</summary>
public sealed class UnobservedScopeFailureEventArgs : EventArgs
{
    internal UnobservedScopeFailureEventArgs(string? scopeName, Exception exception)
    {
        ScopeName = scopeName;
        Exception = exception;
    }

    /// <summary>The name of the scope, pool or queue that reported it, if it had one.</summary>
    public string? ScopeName { get; }

    /// <summary>The failure; one event is raised per unobserved failure.</summary>
    public Exception Exception { get; }
}
