using AsyncScopes;
using BenchmarkDotNet.Attributes;

namespace AsyncScopes.Benchmarks;

/// <summary>An idle timeout pushed forward as a frame arrives: <c>MovableDeadline.Reschedule</c> and <c>Extend</c>,
/// against <c>CancelAfter</c> on the token source the work watches, the way it is written by hand.</summary>
[MemoryDiagnoser]
public class MovableDeadlineBenchmarks : IDisposable
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(30);

    private readonly CancellationTokenSource _handWritten = new();
    private readonly MovableDeadline _deadline = MovableDeadline.After(Idle);

    [Benchmark(Baseline = true)]
    public void CancelAfter() => _handWritten.CancelAfter(Idle);

    [Benchmark]
    public bool Reschedule() => _deadline.Reschedule(_deadline.TimeProvider.GetUtcNow() + Idle);

    /// <summary>Moves the deadline later by a tick each time: no clock reading, the same timer rule.</summary>
    [Benchmark]
    public bool Extend() => _deadline.Extend(TimeSpan.FromTicks(1));

    public void Dispose()
    {
        _handWritten.Dispose();
        _deadline.Dispose();
        GC.SuppressFinalize(this);
    }
}
