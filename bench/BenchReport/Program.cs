using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchReport;

// Makes the results table of docs/benchmarks.md from BenchmarkDotNet's own reports of one or more runs of the suite.
// bench/run.sh runs the suite and then this; run it alone to regenerate the table from reports already made.
//
//   BenchReport --targets bench/targets.json --run DIR [--run DIR]... [--docs docs/benchmarks.md [--allow-not-a-verdict]] [--out FILE]
//
// Each DIR is a run's BenchmarkDotNet artifacts folder (--artifacts) or a copy of its *-report.csv and
// *-report-github.md, with the run-info.txt bench/run.sh writes. The generated Markdown goes to stdout; --out writes
// it to a file too; --docs replaces the region between the markers below in that file, which it refuses to do for
// runs that are not a verdict (a job other than the default one, or a class of the suite missing) unless
// --allow-not-a-verdict is given. Exit codes: 0 done, 1 bad reports or targets, 2 bad arguments, 3 refused.
const string Begin = "<!-- results:begin -->";
const string End = "<!-- results:end -->";

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
Console.OutputEncoding = Encoding.UTF8;

string? targetsPath = null;
string? docsPath = null;
string? outPath = null;
bool allowNotAVerdict = false;
var runDirectories = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    try
    {
        switch (args[i])
        {
            case "--targets":
                targetsPath = Value();
                break;
            case "--run":
                runDirectories.Add(Value());
                break;
            case "--docs":
                docsPath = Value();
                break;
            case "--out":
                outPath = Value();
                break;
            case "--allow-not-a-verdict":
                allowNotAVerdict = true;
                break;
            default:
                throw new ArgumentException($"unknown argument {args[i]}.");
        }
    }
    catch (ArgumentException e)
    {
        return Usage(e.Message);
    }
}

if (targetsPath is null || runDirectories.Count == 0)
{
    return Usage("--targets and at least one --run are required.");
}

try
{
    var classes = TargetsReader.Read(targetsPath);
    var runs = runDirectories.Select(directory => RunReader.Read(directory, Path.GetFileName(Path.TrimEndingDirectorySeparator(directory)))).ToList();
    if (runs.Select(run => run.Name).Distinct(StringComparer.Ordinal).Count() != runs.Count)
    {
        throw new InvalidDataException("two runs have the same folder name.");
    }

    var (markdown, isVerdict) = Table.Render(classes, runs);
    Console.Write(markdown);
    if (outPath is not null)
    {
        WriteAtomically(outPath, markdown);
    }

    if (docsPath is not null)
    {
        if (!isVerdict && !allowNotAVerdict)
        {
            Console.Error.WriteLine($"BenchReport: these runs are not a verdict (see the first lines above); {docsPath} is left as it is.");
            return 3;
        }

        WriteAtomically(docsPath, ReplaceRegion(File.ReadAllText(docsPath), markdown, docsPath));
    }

    return 0;
}
catch (Exception e) when (e is InvalidDataException or JsonException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"BenchReport: {e.Message}");
    return 1;
}

static string ReplaceRegion(string document, string markdown, string path)
{
    int begin = document.IndexOf(Begin, StringComparison.Ordinal);
    int end = document.IndexOf(End, StringComparison.Ordinal);
    if (begin < 0 || end < begin
        || document.IndexOf(Begin, begin + 1, StringComparison.Ordinal) >= 0
        || document.IndexOf(End, end + 1, StringComparison.Ordinal) >= 0)
    {
        throw new InvalidDataException($"{path} must hold \"{Begin}\" once, then \"{End}\" once.");
    }

    return string.Concat(document.AsSpan(0, begin + Begin.Length), "\n", markdown, document.AsSpan(end));
}

static void WriteAtomically(string path, string text)
{
    string temporary = path + ".tmp";
    File.WriteAllText(temporary, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    File.Move(temporary, path, overwrite: true);
}

static int Usage(string problem)
{
    Console.Error.WriteLine($"BenchReport: {problem}");
    Console.Error.WriteLine("usage: BenchReport --targets FILE --run DIR [--run DIR]... [--docs FILE [--allow-not-a-verdict]] [--out FILE]");
    return 2;
}
