namespace AsyncScopes;

public sealed partial class TaskScope
{
    /// <summary>
    /// The children of a scope with <see cref="TaskScopeOptions.StragglerTimeout"/> that are running, so that those still
    /// running that long after <see cref="Token"/> fired are reported, once, through
    /// <see cref="ScopeDiagnostics.Straggler"/>. The scope still waits for them.
    /// </summary>
    private sealed class StragglerWatch(TimeSpan timeout, TimeProvider timeProvider) : IDisposable
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<IChild, (string? Name, string? StartStackTrace)> _running = new(ReferenceEqualityComparer.Instance);
        private ITimer? _timer;
        private bool _closed;

        public void Add(IChild child, string? name)
        {
            var stack = ScopeTracker.CaptureStackIfTracking();
            lock (_lock)
            {
                _running[child] = (name, stack);
            }
        }

        public void Remove(IChild child)
        {
            lock (_lock)
            {
                _running.Remove(child);
            }
        }

        // Token fired: in the timeout, the children still running are stragglers. Runs once (RequestCancel cancels once).
        public void Arm(TaskScope scope)
        {
            var timer = Cancellation.StartTimer(timeProvider, static state => ((TaskScope)state!).ReportStragglers(), scope, timeout);
            lock (_lock)
            {
                if (!_closed)
                {
                    _timer = timer;
                    return;
                }
            }

            timer.Dispose();
        }

        public List<(string? Name, string? StartStackTrace)> TakeRunning()
        {
            lock (_lock)
            {
                return _closed ? [] : [.. _running.Values];
            }
        }

        public TimeSpan Timeout => timeout;

        public void Dispose()
        {
            ITimer? timer;
            lock (_lock)
            {
                _closed = true;
                timer = _timer;
            }

            timer?.Dispose();
        }
    }

    private void ReportStragglers()
    {
        if (Volatile.Read(ref _stop)?.Stragglers is not { } watch)
        {
            return;
        }

        foreach (var (name, stack) in watch.TakeRunning())
        {
            ScopeDiagnostics.ReportStraggler(this, new ScopeStragglerEventArgs(_name, name, CancellationReason, watch.Timeout, stack));
        }
    }
}
