using System.Runtime.ExceptionServices;
using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary><c>WithAsync</c> around a body that completes synchronously, against the try/catch a careful user writes.</summary>
[MemoryDiagnoser]
public class WithAsyncBenchmarks
{
    private readonly Manager _manager = new();

    [Benchmark(Baseline = true)]
    public async Task<int> HandWritten()
    {
        int value = await _manager.EnterAsync(CancellationToken.None);
        Exception? error = null;
        int result = 0;
        try
        {
            result = await Body(value, CancellationToken.None);
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            bool suppress = await _manager.ExitAsync(error);
            if (error is not null && !suppress)
            {
                ExceptionDispatchInfo.Throw(error);
            }
        }

        return result;
    }

    [Benchmark]
    public Task<int> WithAsync() => _manager.WithAsync(Body);

    private static Task<int> Body(int value, CancellationToken cancellationToken) => Task.FromResult(value);

    private sealed class Manager : IAsyncContextManager<int>
    {
        public ValueTask<int> EnterAsync(CancellationToken cancellationToken = default) => new(1);

        public ValueTask<bool> ExitAsync(Exception? exception) => new(false);
    }
}
