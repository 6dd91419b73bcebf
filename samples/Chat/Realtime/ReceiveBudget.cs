namespace Chat.Realtime;

/// <summary>
/// A token bucket: <c>burst</c> frames at once, refilled at <c>perSecond</c>. Used by one receive loop only, so it
/// takes no lock.
/// </summary>
internal sealed class ReceiveBudget(int burst, double perSecond, TimeProvider time)
{
    private double _tokens = burst;
    private long _refilledAt = time.GetTimestamp();

    /// <summary>Takes one frame from the budget; false when the client has spent it.</summary>
    public bool TryTake()
    {
        long now = time.GetTimestamp();
        _tokens = Math.Min(burst, _tokens + (time.GetElapsedTime(_refilledAt, now).TotalSeconds * perSecond));
        _refilledAt = now;
        if (_tokens < 1)
        {
            return false;
        }

        _tokens--;
        return true;
    }
}
