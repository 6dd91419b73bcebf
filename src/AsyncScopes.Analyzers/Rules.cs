using Microsoft.CodeAnalysis;

namespace AsyncScopes.Analyzers;

/// <summary>The rule identifiers and the helpers every descriptor shares.</summary>
internal static class Rules
{
    public const string SyncDisposalInAsyncCode = "ASC0001";
    public const string BlockingInCleanup = "ASC0002";
    public const string UnawaitedWorkInCleanup = "ASC0003";
    public const string AsyncDisposableFieldsInSyncDisposable = "ASC0004";
    public const string TaskFieldNotAwaitedOnDisposal = "ASC0005";
    public const string SemaphoreReleaseNotInFinally = "ASC0006";
    public const string ScopeNotFinished = "ASC0007";
    public const string ScopeNotDisposed = "ASC0008";
    public const string BlockingInAsyncCode = "ASC0009";
    public const string AsyncVoid = "ASC0010";
    public const string SemaphoreWaitProtocol = "ASC0011";
    public const string DisposeAsyncNotAwaited = "ASC0012";
    public const string DisposableLocalNotDisposed = "ASC0013";
    public const string OwnedFieldNotDisposed = "ASC0014";
    public const string WorkOutlivesItsOwner = "ASC0015";

    public const string Reliability = "Reliability";
    public const string Usage = "Usage";

    /// <summary>Where the rules' pages are (the build's <c>AsyncScopesRulesDocsUrl</c>): a rule's help link is this,
    /// its id and <c>.md</c>.</summary>
    public static readonly string DocsUrl = typeof(Rules).Assembly
        .GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), inherit: false)
        .OfType<System.Reflection.AssemblyMetadataAttribute>()
        .FirstOrDefault(attribute => attribute.Key == "AsyncScopesRulesDocsUrl")?.Value ?? "docs/rules/";

    public static DiagnosticDescriptor Create(string id, string title, string message, string category, string description) =>
        new(id, title, message, category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: description,
            helpLinkUri: DocsUrl + id + ".md", customTags: WellKnownDiagnosticTags.Telemetry);
}
