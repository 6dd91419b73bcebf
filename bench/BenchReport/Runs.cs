using System.Globalization;

namespace BenchReport;

/// <summary>One benchmark method's row of a BenchmarkDotNet CSV report. A figure BenchmarkDotNet could not give is null.</summary>
internal sealed record Row(string Method, string Job, decimal? MeanNanoseconds, decimal? Ratio, decimal? AllocatedBytes);

/// <summary>The rows of one benchmark class in one run, in BenchmarkDotNet's order.</summary>
internal sealed record ClassReport(string Class, IReadOnlyList<Row> Rows)
{
    public Row? Find(string method) => Rows.FirstOrDefault(row => row.Method == method);
}

/// <summary>
/// One run of the suite: the reports BenchmarkDotNet exported (<c>*-report.csv</c>, <c>*-report-github.md</c>),
/// from a run's artifacts folder (where they are in <c>results/</c>) or a copy of them, and the
/// <c>run-info.txt</c> bench/run.sh writes beside them.
/// </summary>
internal sealed record Run(
    string Name,
    IReadOnlyList<ClassReport> Classes,
    IReadOnlyList<IReadOnlyList<string>> Environments,
    IReadOnlyDictionary<string, string> Info)
{
    public ClassReport? Find(string className) => Classes.FirstOrDefault(report => report.Class == className);
}

internal static class RunReader
{
    // The columns read from the CSV report. The units are in the header because the benchmarks' ReportConfig fixes
    // them (nanoseconds, bytes) and prints none in the cells.
    public const string MethodColumn = "Method";
    public const string JobColumn = "Job";
    public const string MeanColumn = "Mean [ns]";
    public const string RatioColumn = "Ratio";
    public const string AllocatedColumn = "Allocated [B]";

    private const string CsvSuffix = "-report.csv";
    private const string MarkdownSuffix = "-report-github.md";
    public const string InfoFile = "run-info.txt";

    public static Run Read(string directory, string name)
    {
        if (!Directory.Exists(directory))
        {
            throw new InvalidDataException($"{name}: no folder {directory}.");
        }

        string reports = Directory.Exists(Path.Combine(directory, "results")) ? Path.Combine(directory, "results") : directory;
        string[] csvFiles = Directory.GetFiles(reports, "*" + CsvSuffix);
        Array.Sort(csvFiles, StringComparer.Ordinal);
        if (csvFiles.Length == 0)
        {
            throw new InvalidDataException($"{name}: no *{CsvSuffix} in {reports}.");
        }

        var classes = csvFiles.Select(file => ReadCsv(file, name)).ToList();
        var duplicate = classes.GroupBy(report => report.Class).FirstOrDefault(group => group.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidDataException($"{name}: two reports for the class {duplicate.Key}.");
        }

        string[] markdownFiles = Directory.GetFiles(reports, "*" + MarkdownSuffix);
        Array.Sort(markdownFiles, StringComparer.Ordinal);
        if (markdownFiles.Length == 0)
        {
            throw new InvalidDataException($"{name}: no *{MarkdownSuffix} in {reports}, which holds the environment.");
        }

        var environments = new List<IReadOnlyList<string>>();
        foreach (string file in markdownFiles)
        {
            var environment = ReadEnvironment(file, name);
            if (!environments.Any(known => known.SequenceEqual(environment)))
            {
                environments.Add(environment);
            }
        }

        string infoPath = Path.Combine(directory, InfoFile);
        var info = File.Exists(infoPath) ? ReadInfo(infoPath) : new Dictionary<string, string>();
        return new Run(name, classes, environments, info);
    }

    private static ClassReport ReadCsv(string path, string runName)
    {
        string source = $"{runName}/{Path.GetFileName(path)}";
        var rows = Csv.Parse(File.ReadAllText(path), source);
        if (rows.Count < 2)
        {
            throw new InvalidDataException($"{source}: no benchmark rows.");
        }

        string[] header = rows[0];
        int Column(string name)
        {
            int index = Array.IndexOf(header, name);
            return index >= 0
                ? index
                : throw new InvalidDataException(
                    $"{source}: no column \"{name}\" (columns: {string.Join(", ", header)}). " +
                    "The benchmarks' ReportConfig exports times in ns and sizes in B, the units in the header.");
        }

        int method = Column(MethodColumn);
        int job = Column(JobColumn);
        int mean = Column(MeanColumn);
        int ratio = Column(RatioColumn);
        int allocated = Column(AllocatedColumn);

        var result = new List<Row>();
        for (int i = 1; i < rows.Count; i++)
        {
            string[] cells = rows[i];
            if (cells.Length == 1 && cells[0].Length == 0)
            {
                continue;
            }

            if (cells.Length != header.Length)
            {
                throw new InvalidDataException($"{source}, row {i + 1}: {cells.Length} fields, the header has {header.Length}.");
            }

            var row = new Row(cells[method], cells[job], Number(cells[mean]), Number(cells[ratio]), Number(cells[allocated]));
            if (result.Any(known => known.Method == row.Method))
            {
                throw new InvalidDataException(
                    $"{source}: more than one row for {row.Method} (parameters or several jobs), which the table does not show.");
            }

            result.Add(row);
        }

        // "AsyncScopes.Benchmarks.DeadlineBenchmarks-report.csv": the summary's title, the class's full name.
        string title = Path.GetFileName(path)[..^CsvSuffix.Length];
        return new ClassReport(title[(title.LastIndexOf('.') + 1)..], result);
    }

    /// <summary>A figure as BenchmarkDotNet prints it in invariant culture; null where it prints NA, ? or nothing.</summary>
    private static decimal? Number(string cell) =>
        decimal.TryParse(cell, NumberStyles.Float | NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out decimal value)
            ? value
            : null;

    /// <summary>The block that opens BenchmarkDotNet's GitHub report: its version and OS, CPU, SDK and runtimes.</summary>
    private static List<string> ReadEnvironment(string path, string runName)
    {
        string[] lines = File.ReadAllLines(path);
        int end = Array.IndexOf(lines, "```", 1);
        if (lines.Length == 0 || lines[0] != "```" || end < 0)
        {
            throw new InvalidDataException($"{runName}/{Path.GetFileName(path)}: does not open with the environment block.");
        }

        var block = lines[1..end].Select(line => line.TrimEnd()).ToList();
        while (block.Count > 0 && block[0].Length == 0)
        {
            block.RemoveAt(0);
        }

        while (block.Count > 0 && block[^1].Length == 0)
        {
            block.RemoveAt(block.Count - 1);
        }

        return block;
    }

    private static Dictionary<string, string> ReadInfo(string path)
    {
        var info = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in File.ReadAllLines(path))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                info[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }
        }

        return info;
    }
}
