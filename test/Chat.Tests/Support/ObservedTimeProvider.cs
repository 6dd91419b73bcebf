using Microsoft.Extensions.Time.Testing;

namespace Chat.Tests.Support;

/// <summary>
/// A <see cref="FakeTimeProvider"/> starting at the real current time, on a whole second, that also tells when the code under test has
/// created a timer: a test advances the clock only once the timer it means to fire exists, so no advance is lost.
/// </summary>
internal sealed class ObservedTimeProvider : TimeProvider
{
    private readonly FakeTimeProvider _fake;
    private readonly Lock _lock = new();
    private readonly List<TimeSpan> _created = [];
    private readonly List<(TimeSpan DueTime, int Count, TaskCompletionSource Created)> _waiters = [];

    /// <param name="start">The time it starts at; the current one, on a whole second, when null. Two clocks started
    /// at the same time show the same times until one of them is advanced.</param>
    public ObservedTimeProvider(DateTimeOffset? start = null)
    {
        _fake = new FakeTimeProvider(start ?? DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    }

    public override DateTimeOffset GetUtcNow() => _fake.GetUtcNow();

    public override long GetTimestamp() => _fake.GetTimestamp();

    public override long TimestampFrequency => _fake.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => _fake.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ITimer timer = _fake.CreateTimer(callback, state, dueTime, period);
        lock (_lock)
        {
            _created.Add(dueTime);
            int count = _created.Count(created => created == dueTime);
            foreach (var waiter in _waiters.Where(waiter => waiter.DueTime == dueTime && waiter.Count <= count).ToList())
            {
                _waiters.Remove(waiter);
                waiter.Created.TrySetResult();
            }
        }

        return timer;
    }

    /// <summary>Completes once <paramref name="count"/> timers due after <paramref name="dueTime"/> have been created
    /// in all.</summary>
    public Task TimersCreated(TimeSpan dueTime, int count)
    {
        lock (_lock)
        {
            if (_created.Count(created => created == dueTime) >= count)
            {
                return Task.CompletedTask;
            }

            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((dueTime, count, created));
            return created.Task;
        }
    }

    public int TimersCreatedCount(TimeSpan dueTime)
    {
        lock (_lock)
        {
            return _created.Count(created => created == dueTime);
        }
    }

    public void Advance(TimeSpan delta) => _fake.Advance(delta);
}
