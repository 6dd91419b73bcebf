using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Support;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that tells what became of the timers made on it: how often they fired, how many are not disposed yet,
/// whether each was made with the <see cref="ExecutionContext"/> flow suppressed (so that it does not hold its
/// creator's <see cref="AsyncLocal{T}"/> values), and whether each is still reachable (held by its owner).
/// </summary>
internal sealed class TrackingTimeProvider : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<WeakReference<ITimer>> _timers = [];
    private readonly List<bool> _madeWithFlowSuppressed = [];
    private int _undisposed;
    private int _fired;

    /// <summary>The clock the timers run on.</summary>
    public FakeTimeProvider Clock { get; } = new();

    /// <summary>How many times a timer made on this provider called its callback.</summary>
    public int Fired => Volatile.Read(ref _fired);

    /// <summary>How many of the timers made on this provider were not disposed yet.</summary>
    public int Undisposed => Volatile.Read(ref _undisposed);

    /// <summary>For each timer made, in order: whether the flow of the execution context was suppressed.</summary>
    public IReadOnlyList<bool> MadeWithFlowSuppressed
    {
        get
        {
            lock (_lock)
            {
                return [.. _madeWithFlowSuppressed];
            }
        }
    }

    /// <summary>How many of the timers made on this provider are still reachable after a full collection.</summary>
    public int Reachable()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        lock (_lock)
        {
            return _timers.Count(timer => timer.TryGetTarget(out _));
        }
    }

    public override DateTimeOffset GetUtcNow() => Clock.GetUtcNow();

    public override long GetTimestamp() => Clock.GetTimestamp();

    public override long TimestampFrequency => Clock.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => Clock.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        TimerCallback counted = state =>
        {
            Interlocked.Increment(ref _fired);
            callback(state);
        };
        var timer = new TrackedTimer(this, Clock.CreateTimer(counted, state, dueTime, period));
        lock (_lock)
        {
            _timers.Add(new WeakReference<ITimer>(timer));
            _madeWithFlowSuppressed.Add(ExecutionContext.IsFlowSuppressed());
        }

        Interlocked.Increment(ref _undisposed);
        return timer;
    }

    private sealed class TrackedTimer(TrackingTimeProvider provider, ITimer inner) : ITimer
    {
        private int _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref provider._undisposed);
            }

            inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
