using System.Diagnostics;

namespace AsyncScopes;

/// <summary>The library's <see cref="ActivitySource"/>, named <see cref="ScopeDiagnostics.ActivitySourceName"/>: a span
/// per <see cref="TaskScope"/>, made only while a listener (OpenTelemetry's tracer, say) samples it.</summary>
internal static class ScopeTracing
{
    public static readonly ActivitySource Source = new(ScopeDiagnostics.ActivitySourceName, typeof(ScopeTracing).Assembly.GetName().Version?.ToString());

    public const string ScopeNameTag = "asyncscopes.scope.name";
    public const string ChildrenStartedTag = "asyncscopes.scope.children.started";
    public const string ChildrenFailedTag = "asyncscopes.scope.children.failed";
    public const string ChildrenCancelledTag = "asyncscopes.scope.children.cancelled";
    public const string OutcomeTag = "asyncscopes.scope.outcome";

    /// <summary>
    /// Starts a span whose parent is the creator's current one, and leaves the creator's current span as it was: the
    /// new span is the parent of what runs <em>inside</em> the scope (its body and its children make it current),
    /// not of what its creator does next.
    /// </summary>
    /// <returns>The span, or <see langword="null"/> (nothing allocated) when nobody listens or it is not sampled.</returns>
    public static Activity? StartScopeSpan(string operationName, string? scopeName)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var current = Activity.Current;
        var span = Source.StartActivity(operationName, ActivityKind.Internal);
        if (span is null)
        {
            return null;
        }

        if (scopeName is not null)
        {
            span.DisplayName = $"{operationName} {scopeName}";
            span.SetTag(ScopeNameTag, scopeName);
        }

        Activity.Current = current;
        return span;
    }
}
