using AsyncScopes.Benchmarks;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// The table of docs/benchmarks.md is made by bench/run.sh, which runs this program and reads its CSV and Markdown
// reports (see ReportConfig).
// Full run:  dotnet run -c Release --project bench/AsyncScopes.Benchmarks -- --filter '*'
// Quick run: dotnet run -c Release --project bench/AsyncScopes.Benchmarks -- --quick --filter '*'
bool quick = args.Contains("--quick");
args = args.Where(a => a != "--quick").ToArray();
IConfig config = ReportConfig.Instance;
if (quick)
{
    config = config.AddJob(Job.ShortRun.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5).AsDefault());
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
