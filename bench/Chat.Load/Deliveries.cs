using System.Diagnostics;

namespace Chat.Load;

/// <summary>What one client received: the latency of each delivery, and whether all it expects have arrived.</summary>
internal sealed class Deliveries(int expectedCount)
{
    private TaskCompletionSource _allReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _expected = long.MaxValue;
    private long _received;

    /// <summary>Stopwatch ticks from send to receipt, one per message received; written by one receive loop.</summary>
    public List<long> Latencies { get; } = new(expectedCount);

    /// <summary>A message of <see cref="ILoadClient.NewText"/> arrived now.</summary>
    public void Received(string text)
    {
        Latencies.Add(Stopwatch.GetTimestamp() - ILoadClient.SentAt(text));
        if (Interlocked.Increment(ref _received) >= Volatile.Read(ref _expected))
        {
            Volatile.Read(ref _allReceived).TrySetResult();
        }
    }

    /// <summary>The server closed the client or answered with an error: what it still expects will not come.</summary>
    public void Failed(string why) => Volatile.Read(ref _allReceived).TrySetException(new InvalidOperationException(why));

    /// <summary>Forgets what was received: the warm-up is over. Only once every expected message arrived and before
    /// the next is sent, so that no receipt races it.</summary>
    public void Restart()
    {
        Latencies.Clear();
        Interlocked.Exchange(ref _received, 0);
        Volatile.Write(ref _expected, long.MaxValue);
        Volatile.Write(ref _allReceived, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
    }

    /// <summary>Completes once <paramref name="count"/> messages in all have been received.</summary>
    public Task ExpectAsync(long count)
    {
        Volatile.Write(ref _expected, count);
        if (Interlocked.Read(ref _received) >= count)
        {
            _allReceived.TrySetResult();
        }

        return _allReceived.Task;
    }
}
