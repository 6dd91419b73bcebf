namespace AsyncScopes;

/// <summary>A failure of a scope that nobody observed: the scope was disposed without being joined.</summary>
public sealed class UnobservedScopeFailureEventArgs : EventArgs
{
    internal UnobservedScopeFailureEventArgs(string? scopeName, Exception exception)
    {
        ScopeName = scopeName;
        Exception = exception;
    }

    /// <summary>The name of the scope (<see cref="TaskScopeOptions.Name"/>), if it had one.</summary>
    public string? ScopeName { get; }

    /// <summary>The failure; one event is raised per unobserved failure.</summary>
    public Exception Exception { get; }
}
