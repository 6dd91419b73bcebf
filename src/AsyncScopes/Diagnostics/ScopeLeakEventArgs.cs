namespace AsyncScopes;

/// <summary>A scope that was dropped without being closed, or a lease still out when its pool finished draining.</summary>
public sealed class ScopeLeakEventArgs : EventArgs
{
    internal ScopeLeakEventArgs(OpenScopeInfo scope) => Scope = scope;

    /// <summary>The leaked scope: its kind, name, creation time and, with leak tracking on, where it was created.</summary>
    public OpenScopeInfo Scope { get; }
}
