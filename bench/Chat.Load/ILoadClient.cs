using System.Diagnostics;

namespace Chat.Load;

/// <summary>A client of the load, whatever the server it talks to.</summary>
internal interface ILoadClient : IAsyncDisposable
{
    private const string Padding = "................................................";

    /// <summary>Stopwatch ticks from send to receipt, one per message received.</summary>
    List<long> Latencies { get; }

    /// <summary>Completes once <paramref name="count"/> messages in all have been received; faults when the server
    /// closed the client or answered with an error.</summary>
    Task ExpectAsync(long count);

    /// <summary>Forgets the messages received so far (the warm-up's): <see cref="Latencies"/> and the count
    /// <see cref="ExpectAsync"/> waits for start again. Only when every message expected has arrived and none is
    /// in flight.</summary>
    void Restart();

    /// <summary>Sends <paramref name="count"/> messages, with at most <paramref name="inFlight"/> of them waiting for
    /// their acks, and returns once every one was acked.</summary>
    Task SendAsync(int count, int inFlight, CancellationToken cancellationToken);

    /// <summary>A message's text: the time it is sent, then padding to the size of a short chat message.</summary>
    static string NewText() => $"{Stopwatch.GetTimestamp()} {Padding}";

    /// <summary>The time a message of <see cref="NewText"/> was sent.</summary>
    static long SentAt(string text) => long.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), provider: null);
}
