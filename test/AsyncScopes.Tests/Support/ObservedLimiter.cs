using System.Threading.RateLimiting;

namespace AsyncScopes.Tests.Support;

/// <summary>A real <see cref="ConcurrencyLimiter"/> that also tells when a permit has been asked for: a test waits for
/// the request instead of for time to pass.</summary>
internal sealed class ObservedLimiter(int permits, int queueLimit) : RateLimiter
{
    private readonly ConcurrencyLimiter _inner = new(new ConcurrencyLimiterOptions { PermitLimit = permits, QueueLimit = queueLimit });
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Reached)> _waiters = [];
    private int _requests;

    public override TimeSpan? IdleDuration => _inner.IdleDuration;

    /// <summary>The permits free now.</summary>
    public long Available => _inner.GetStatistics()!.CurrentAvailablePermits;

    /// <summary>Completes once <paramref name="count"/> asynchronous requests were made in all.</summary>
    public Task Requested(int count)
    {
        lock (_lock)
        {
            if (_requests >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, reached));
            return reached.Task;
        }
    }

    public override RateLimiterStatistics? GetStatistics() => _inner.GetStatistics();

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => _inner.AttemptAcquire(permitCount);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        // Asked of the real limiter first: once a test sees the request, it is queued there (or answered).
        var lease = _inner.AcquireAsync(permitCount, cancellationToken);
        lock (_lock)
        {
            _requests++;
            foreach (var waiter in _waiters.Where(waiter => waiter.Count <= _requests).ToList())
            {
                _waiters.Remove(waiter);
                waiter.Reached.SetResult();
            }
        }

        return lease;
    }

    protected override async ValueTask DisposeAsyncCore()
    {
        await _inner.DisposeAsync();
        await base.DisposeAsyncCore();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
