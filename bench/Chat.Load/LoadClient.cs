using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Chat.Load;

/// <summary>
/// One WebSocket client of the load: it sends its share of the messages one at a time (the next after the ack of the
/// last), and notes for every message it receives how long ago it was sent.
/// </summary>
internal sealed class LoadClient : IAsyncDisposable
{
    private const string Padding = "................................................";

    private readonly ClientWebSocket _socket;
    private readonly SemaphoreSlim _acks = new(0);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly TaskCompletionSource _allReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _receiving;
    private long _expected = long.MaxValue;
    private long _received;

    private LoadClient(ClientWebSocket socket, int expectedLatencies)
    {
        _socket = socket;
        Latencies = new List<long>(expectedLatencies);
        _receiving = ReceiveLoopAsync();
    }

    /// <summary>Stopwatch ticks from send to receipt, one per message received.</summary>
    public List<long> Latencies { get; }

    public static async Task<LoadClient> ConnectAsync(Uri uri, int expectedLatencies, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        try
        {
            await socket.ConnectAsync(uri, cancellationToken);
            return new LoadClient(socket, expectedLatencies);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
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

    /// <summary>Sends <paramref name="count"/> messages, each after the ack of the one before.</summary>
    public async Task SendAsync(int count, CancellationToken cancellationToken)
    {
        for (int i = 0; i < count; i++)
        {
            string json = $$"""{"text":"{{Stopwatch.GetTimestamp()}} {{Padding}}"}""";
            await _sendLock.WaitAsync(cancellationToken);
            try
            {
                await _socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            }
            finally
            {
                _sendLock.Release();
            }

            await _acks.WaitAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Abort();
        await _receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        _acks.Dispose();
        _sendLock.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            int length = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await _socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                length += result.Count;
            }
            while (!result.EndOfMessage);

            if (result.MessageType == WebSocketMessageType.Close)
            {
                _allReceived.TrySetException(new InvalidOperationException(
                    $"The service closed a client: {_socket.CloseStatus} {_socket.CloseStatusDescription}"));
                return;
            }

            long now = Stopwatch.GetTimestamp();
            var reader = new Utf8JsonReader(buffer.AsSpan(0, length));
            using var frame = JsonDocument.ParseValue(ref reader);
            switch (frame.RootElement.GetProperty("type").GetString())
            {
                case "message":
                    string text = frame.RootElement.GetProperty("text").GetString()!;
                    Latencies.Add(now - long.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), provider: null));
                    if (Interlocked.Increment(ref _received) >= Volatile.Read(ref _expected))
                    {
                        _allReceived.TrySetResult();
                    }

                    break;
                case "ack":
                    _acks.Release();
                    break;
                case "ping":
                    await _sendLock.WaitAsync();
                    try
                    {
                        await _socket.SendAsync("""{"type":"pong"}"""u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                    }
                    finally
                    {
                        _sendLock.Release();
                    }

                    break;
                case "error":
                    _allReceived.TrySetException(new InvalidOperationException(
                        $"The service answered with an error: {frame.RootElement.GetProperty("message").GetString()}"));
                    break;
            }
        }
    }
}
