using System.Runtime.ExceptionServices;
using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary><c>WithAsync</c> around a body that completes synchronously, against the try/catch a careful user writes.</summary>
[MemoryDiagnoser]
public class WithAsyncBenchmarks
{
    private readonly Manager _manager = new();
    private readonly IAsyncContextManager<int> _abstractManager = new Manager();
    private readonly Func<int, CancellationToken, Task<int>> _body = Body;

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

    /// <summary>
    /// The same try/catch, calling what <c>WithAsync</c> must call the way it must call it: the manager through
    /// <see cref="IAsyncContextManager{T}"/> and the body through its delegate. Not a target: it measures how much of
    /// <c>WithAsync</c>'s cost is that indirection (an interface call for enter and exit, a delegate call for the
    /// body, where the baseline's calls are direct and inlined) rather than anything else the library does.
    /// </summary>
    [Benchmark]
    public async Task<int> HandWrittenThroughInterface()
    {
        IAsyncContextManager<int> manager = _abstractManager;
        int value = await manager.EnterAsync(CancellationToken.None);
        Exception? error = null;
        int result = 0;
        try
        {
            result = await _body(value, CancellationToken.None);
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            bool suppress = await manager.ExitAsync(error);
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
