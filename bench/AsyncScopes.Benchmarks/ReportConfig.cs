using System.Globalization;
using BenchmarkDotNet.Analysers;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.EventProcessors;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Csv;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Order;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Validators;
using Perfolizer.Horology;
using Perfolizer.Metrology;

namespace AsyncScopes.Benchmarks;

/// <summary>
/// BenchmarkDotNet's default config, but for its CSV report (<c>*-report.csv</c>), which bench/BenchReport reads to make
/// the table of docs/benchmarks.md: every time in nanoseconds and every size in bytes, the units in the header
/// (<c>Mean [ns]</c>, <c>Allocated [B]</c>) and none in the cells, invariant culture, comma-separated whatever the
/// machine's culture. The console, Markdown and HTML reports are the default ones. (Adding a second CSV exporter to the
/// default config instead would replace the first one, but with a "Config Issues" warning in every run.)
/// </summary>
internal sealed class ReportConfig : IConfig
{
    private static readonly IConfig Default = DefaultConfig.Instance;

    private static readonly IExporter Csv = new CsvExporter(
        CsvSeparator.Comma,
        new SummaryStyle(
            CultureInfo.InvariantCulture,
            printUnitsInHeader: true,
            sizeUnit: SizeUnit.B,
            timeUnit: TimeUnit.Nanosecond,
            printUnitsInContent: false));

    public static readonly IConfig Instance = new ReportConfig();

    private ReportConfig()
    {
    }

    public IEnumerable<IExporter> GetExporters() =>
        Default.GetExporters().Select(exporter => exporter is CsvExporter ? Csv : exporter);

    public IEnumerable<IColumnProvider> GetColumnProviders() => Default.GetColumnProviders();
    public IEnumerable<ILogger> GetLoggers() => Default.GetLoggers();
    public IEnumerable<IDiagnoser> GetDiagnosers() => Default.GetDiagnosers();
    public IEnumerable<IAnalyser> GetAnalysers() => Default.GetAnalysers();
    public IEnumerable<Job> GetJobs() => Default.GetJobs();
    public IEnumerable<IValidator> GetValidators() => Default.GetValidators();
    public IEnumerable<HardwareCounter> GetHardwareCounters() => Default.GetHardwareCounters();
    public IEnumerable<IFilter> GetFilters() => Default.GetFilters();
    public IEnumerable<BenchmarkLogicalGroupRule> GetLogicalGroupRules() => Default.GetLogicalGroupRules();
    public IEnumerable<EventProcessor> GetEventProcessors() => Default.GetEventProcessors();
    public IEnumerable<IColumnHidingRule> GetColumnHidingRules() => Default.GetColumnHidingRules();
    public IOrderer? Orderer => Default.Orderer;
    public ICategoryDiscoverer? CategoryDiscoverer => Default.CategoryDiscoverer;
    public SummaryStyle SummaryStyle => Default.SummaryStyle;
    public ConfigUnionRule UnionRule => Default.UnionRule;
    public string ArtifactsPath => Default.ArtifactsPath;
    public CultureInfo? CultureInfo => Default.CultureInfo;
    public ConfigOptions Options => Default.Options;
    public TimeSpan BuildTimeout => Default.BuildTimeout;
    public WakeLockType WakeLock => Default.WakeLock;
    public IReadOnlyList<Conclusion> ConfigAnalysisConclusion => Default.ConfigAnalysisConclusion;
}
