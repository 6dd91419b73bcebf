namespace AsyncScopes;

/// <summary>
/// A child of a <see cref="TaskScope"/> still running <see cref="TaskScopeOptions.StragglerTimeout"/> after the scope's
/// token fired: it does not observe cancellation, and the scope waits for it. See <see cref="ScopeDiagnostics.Straggler"/>.
/// </summary>
public sealed class ScopeStragglerEventArgs : EventArgs
{
    internal ScopeStragglerEventArgs(string? scopeName, string? childName, ScopeCancellationReason reason, TimeSpan waited, string? startStackTrace)
    {
        ScopeName = scopeName;
        ChildName = childName;
        Reason = reason;
        Waited = waited;
        StartStackTrace = startStackTrace;
    }

    /// <summary>The scope's <see cref="TaskScopeOptions.Name"/>, if it has one.</summary>
    public string? ScopeName { get; }

    /// <summary>The name the child was started with (<see cref="TaskScope.Start(Func{CancellationToken, Task}, string?)"/>), if any.</summary>
    public string? ChildName { get; }

    /// <summary>Why the scope's token fired (<see cref="TaskScope.CancellationReason"/>).</summary>
    public ScopeCancellationReason Reason { get; }

    /// <summary>How long after the token fired the child was still running: the straggler timeout.</summary>
    public TimeSpan Waited { get; }

    /// <summary>Where the child was started, when <see cref="ScopeDiagnostics.LeakTracking"/> was on; else <see langword="null"/>.</summary>
    public string? StartStackTrace { get; }
}
