namespace Chat.Realtime;

/// <summary>
/// What one client may send: a token bucket of <c>burst</c> frames, refilled at <c>perSecond</c> on the service's
/// clock. Every frame counts, control frames (ping, pong, close) and empty fragments included:
/// <see cref="FrameCountingStream"/> takes one per frame as it arrives. When a frame finds the bucket empty, the budget
/// is spent for good and <see cref="OnSpent"/>'s action runs, once.
/// </summary>
/// <remarks>
/// Not <c>System.Threading.RateLimiting</c>'s <c>TokenBucketRateLimiter</c>: its refill reads <c>Stopwatch</c>, even
/// when refilled by hand, so neither the service's <see cref="TimeProvider"/> nor a test's fake clock could drive it.
/// Used by one receive loop at a time (the reads of one stream), so it takes no lock.
/// </remarks>
internal sealed class ReceiveBudget(int burst, double perSecond, TimeProvider time)
{
    private double _tokens = burst;
    private long _refilledAt = time.GetTimestamp();
    private Action? _onSpent;
    private int _spent;
    private long _past;

    /// <summary>Whether the client sent more than its budget.</summary>
    public bool IsSpent => Volatile.Read(ref _spent) == 1;

    /// <summary>Whether the client went on sending a whole burst more after its budget was spent (and it was told so,
    /// with 1008): a flood, not a client that was closing.</summary>
    public bool IsFlooding => _past > burst;

    /// <summary>Runs <paramref name="action"/> when the budget is spent, or at once if it is already.</summary>
    public void OnSpent(Action action)
    {
        Volatile.Write(ref _onSpent, action);
        if (IsSpent && Interlocked.Exchange(ref _onSpent, null) is { } spent)
        {
            spent();
        }
    }

    /// <summary>Takes one frame from the budget; false (and the budget spent) when the client has none left.</summary>
    public bool TryTake()
    {
        long now = time.GetTimestamp();
        _tokens = Math.Min(burst, _tokens + (time.GetElapsedTime(_refilledAt, now).TotalSeconds * perSecond));
        _refilledAt = now;
        if (_tokens >= 1 && !IsSpent)
        {
            _tokens--;
            return true;
        }

        if (Interlocked.Exchange(ref _spent, 1) == 0 && Interlocked.Exchange(ref _onSpent, null) is { } spent)
        {
            spent();
        }

        _past++;
        return false;
    }
}
