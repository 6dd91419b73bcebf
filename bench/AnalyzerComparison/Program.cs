using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Xml.Linq;
using AnalyzerComparison;

// Builds the corpus (the rule tests' code) once per analyzer package, each with every rule on, and compares what
// each finds: docs/analyzers-compared.md. Usage: dotnet run --project bench/AnalyzerComparison -c Release
var repo = FindRepository(AppContext.BaseDirectory);
var output = Path.Combine(repo, "bench", "results", "analyzer-comparison");
var corpusDirectory = Path.Combine(output, "corpus");
if (Directory.Exists(corpusDirectory))
{
    Directory.Delete(corpusDirectory, recursive: true);
}

Directory.CreateDirectory(Path.Combine(corpusDirectory, "Cases"));
var (cases, skipped) = Corpus.Extract(Path.Combine(repo, "test", "AsyncScopes.Analyzers.Tests"));
var documented = Corpus.FromTheirDocs(Path.Combine(repo, "bench", "AnalyzerComparison", "FromTheirDocs"));
foreach (var @case in cases.Concat(documented))
{
    File.WriteAllText(Path.Combine(corpusDirectory, "Cases", @case.Id + ".cs"), @case.Source);
}

CorpusProject.Write(corpusDirectory, repo);
Console.WriteLine($"{cases.Count} cases from the rule tests, {skipped.Count} tests left out; {documented.Count} written from the other packages' documentation");

var findings = new Dictionary<string, Dictionary<string, List<string>>>(); // tool -> case -> counted rule ids
foreach (var tool in Tool.All)
{
    var sarif = Path.Combine(output, tool.Name + ".sarif");
    Console.WriteLine($"Building the corpus with {tool.Name}...");
    Run("dotnet", "build", Path.Combine(corpusDirectory, "Corpus.csproj"), "--no-incremental", "-nologo", "-v:q", "-clp:ErrorsOnly;NoSummary", "-c", "Release",
        $"-p:Tool={tool.Name}", $"-p:ErrorLog={sarif}%2Cversion=2.1");
    findings[tool.Name] = Sarif.Read(sarif)
        .Where(result => tool.Counts(result.RuleId) && Path.GetDirectoryName(result.File) is { } folder && Path.GetFileName(folder) == "Cases")
        .GroupBy(result => Path.GetFileNameWithoutExtension(result.File))
        .ToDictionary(group => group.Key, group => group.Select(result => result.RuleId).Distinct().Order(StringComparer.Ordinal).ToList());
}

var report = Report.Write(cases, skipped, documented, findings, Versions(repo));
var docs = Path.Combine(repo, "docs", "analyzers-compared.md");
Report.Replace(docs, report);
Console.WriteLine(report);
Console.WriteLine($"written: {docs}");

static string FindRepository(string from)
{
    for (var directory = new DirectoryInfo(from); directory is not null; directory = directory.Parent)
    {
        if (File.Exists(Path.Combine(directory.FullName, "AsyncScopes.slnx")))
        {
            return directory.FullName;
        }
    }

    throw new InvalidOperationException("Run this from inside the repository: AsyncScopes.slnx was not found above " + from);
}

static void Run(string file, params string[] arguments)
{
    using var process = Process.Start(new ProcessStartInfo(file, arguments) { UseShellExecute = false })
        ?? throw new InvalidOperationException("Could not start " + file);
    process.WaitForExit();
    if (process.ExitCode != 0)
    {
        throw new InvalidOperationException($"'{file} {string.Join(' ', arguments)}' failed with exit code {process.ExitCode}");
    }
}

static string Versions(string repo)
{
    var sdk = Process.Start(new ProcessStartInfo("dotnet", "--version") { RedirectStandardOutput = true, UseShellExecute = false })!;
    var version = sdk.StandardOutput.ReadToEnd().Trim();
    sdk.WaitForExit();
    var packages = string.Join(", ", Tool.All.Where(tool => tool.Package.Length > 0).Select(tool => $"{tool.Package} {tool.Version}"));
    return string.Create(CultureInfo.InvariantCulture, $".NET SDK {version} (NetAnalyzers from it, AnalysisMode All), {packages}");
}
