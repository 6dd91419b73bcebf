using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary><c>Deadline.RunAsync</c> on an operation that completes at once, against CancelAfter + try/finally.</summary>
[MemoryDiagnoser]
public class DeadlineBenchmarks
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Benchmark(Baseline = true)]
    public async Task<int> CancelAfter()
    {
        using var cancellation = new CancellationTokenSource();
        cancellation.CancelAfter(Timeout);
        try
        {
            return await Work(cancellation.Token);
        }
        catch (OperationCanceledException e) when (cancellation.IsCancellationRequested)
        {
            throw new TimeoutException("timed out", e);
        }
    }

    [Benchmark]
    public Task<int> Deadline() => AsyncScopes.Deadline.RunAsync(Timeout, Work);

    private static Task<int> Work(CancellationToken cancellationToken) => Task.FromResult(1000);
}
