using System.Diagnostics.Metrics;
using AsyncScopes;

namespace Chat.Tests.Support;

/// <summary>
/// Counts, through the library's meter, the children of task scopes started and not yet finished since this listener
/// was created: every task a connection runs is one.
/// </summary>
internal sealed class RunningChildren : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private readonly List<(long Count, TaskCompletionSource Reached)> _waiters = [];
    private long _net;

    public RunningChildren()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ScopeDiagnostics.MeterName && instrument.Name == "asyncscopes.scope.children")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, delta, _, _) => OnDelta(delta));
        _listener.Start();
    }

    /// <summary>Started minus finished since the listener was created.</summary>
    public long Net
    {
        get
        {
            lock (_lock)
            {
                return _net;
            }
        }
    }

    /// <summary>Completes once <see cref="Net"/> is <paramref name="count"/>; fails after <see cref="ChatServer.Patience"/>.</summary>
    public Task WaitForAsync(long count)
    {
        lock (_lock)
        {
            if (_net == count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, reached));
            return reached.Task.WaitAsync(ChatServer.Patience);
        }
    }

    public void Dispose() => _listener.Dispose();

    private void OnDelta(long delta)
    {
        lock (_lock)
        {
            _net += delta;
            foreach (var waiter in _waiters.Where(waiter => waiter.Count == _net).ToList())
            {
                _waiters.Remove(waiter);
                waiter.Reached.TrySetResult();
            }
        }
    }
}
