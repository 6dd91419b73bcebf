namespace AnalyzerComparison;

/// <summary>
/// An analyzer package compared on the corpus: how the corpus project turns it on, and which of its rules look for
/// the failures the corpus is about (a resource not disposed, blocking in async code, work nobody awaits,
/// <c>async void</c>, the semaphore protocol). Its other rules (style, naming, performance) are not counted.
/// </summary>
internal sealed record Tool(string Name, string Package, string Version, IReadOnlySet<string> Rules)
{
    /// <summary>The AsyncScopes rules: every one, on by default as a user gets them.</summary>
    public const string Ours = "AsyncScopes";

    /// <summary>The .NET SDK's own analyzers, with <c>AnalysisMode</c> All.</summary>
    public const string NetAnalyzers = "NetAnalyzers";

    /// <summary>The packages, ours first. The rule lists are fixed here, before any run, from each package's rule titles.</summary>
    public static IReadOnlyList<Tool> All { get; } =
    [
        new(Ours, "", "", new HashSet<string>()),
        new(NetAnalyzers, "", "", Set("CA1001", "CA1849", "CA2000", "CA2012", "CA2213", "CA2215", "CA2024", "CA2025")),
        new("VSTHRD", "Microsoft.VisualStudio.Threading.Analyzers", "18.12.1",
            Set("VSTHRD002", "VSTHRD100", "VSTHRD101", "VSTHRD103", "VSTHRD107", "VSTHRD110", "VSTHRD112", "VSTHRD113")),
        new("AsyncFixer", "AsyncFixer", "2.1.0", Set("AsyncFixer02", "AsyncFixer03", "AsyncFixer04", "AsyncFixer05")),
        new("IDisposableAnalyzers", "IDisposableAnalyzers", "4.0.8",
            Set("IDISP001", "IDISP002", "IDISP003", "IDISP004", "IDISP006", "IDISP008", "IDISP013", "IDISP017")),
        new("Meziantou", "Meziantou.Analyzer", "3.0.341", Set("MA0042", "MA0045", "MA0100", "MA0129", "MA0134", "MA0147", "MA0155")),
        new("Roslynator", "Roslynator.Analyzers", "5.0.1", Set("RCS1229", "RCS1261")),
    ];

    /// <summary>True when <paramref name="ruleId"/> counts for this package.</summary>
    public bool Counts(string ruleId) => Name == Ours ? ruleId.StartsWith("ASC", StringComparison.Ordinal) : Rules.Contains(ruleId);

    private static HashSet<string> Set(params string[] ids) => new(ids, StringComparer.Ordinal);
}
