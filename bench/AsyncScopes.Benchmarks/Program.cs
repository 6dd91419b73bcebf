using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// Full run:  dotnet run -c Release --project bench/AsyncScopes.Benchmarks -- --filter '*'
// Quick run: dotnet run -c Release --project bench/AsyncScopes.Benchmarks -- --quick --filter '*'
bool quick = args.Contains("--quick");
args = args.Where(a => a != "--quick").ToArray();
IConfig config = DefaultConfig.Instance;
if (quick)
{
    config = config.AddJob(Job.ShortRun.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5).AsDefault());
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
