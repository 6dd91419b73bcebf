namespace AsyncScopes;

/// <summary>What a <see cref="TaskScope"/> does when one of its children fails.</summary>
public enum TaskScopeFailureMode
{
    /// <summary>The first failure cancels the scope's token, so the other children stop early (Python's <c>TaskGroup</c>).</summary>
    CancelOnFirstFailure,

    /// <summary>Failures are collected and the other children run to their end.</summary>
    WaitForAll,
}
