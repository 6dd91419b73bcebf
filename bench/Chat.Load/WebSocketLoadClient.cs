using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Chat.Load;

/// <summary>
/// One WebSocket client of the load, for the service and the raw baseline (one wire protocol): it sends its share of
/// the messages with at most a given number waiting for their acks, and notes for every message it receives how long
/// ago it was sent.
/// </summary>
internal sealed class WebSocketLoadClient : ILoadClient
{
    private readonly ClientWebSocket _socket;
    private readonly SemaphoreSlim _acks = new(0);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Deliveries _deliveries;
    private readonly Task _receiving;

    private WebSocketLoadClient(ClientWebSocket socket, int expectedLatencies)
    {
        _socket = socket;
        _deliveries = new Deliveries(expectedLatencies);
        _receiving = ReceiveLoopAsync();
    }

    public List<long> Latencies => _deliveries.Latencies;

    public static async Task<WebSocketLoadClient> ConnectAsync(Uri uri, int expectedLatencies, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        try
        {
            await socket.ConnectAsync(uri, cancellationToken);
            return new WebSocketLoadClient(socket, expectedLatencies);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public Task ExpectAsync(long count) => _deliveries.ExpectAsync(count);

    public void Restart() => _deliveries.Restart();

    public async Task SendAsync(int count, int inFlight, CancellationToken cancellationToken)
    {
        for (int i = 0; i < count; i++)
        {
            if (i >= inFlight)
            {
                await _acks.WaitAsync(cancellationToken); // a place in flight, freed by an ack
            }

            await _sendLock.WaitAsync(cancellationToken);
            try
            {
                await _socket.SendAsync(Encoding.UTF8.GetBytes($$"""{"text":"{{ILoadClient.NewText()}}"}"""), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            }
            finally
            {
                _sendLock.Release();
            }
        }

        for (int i = Math.Min(count, inFlight); i > 0; i--)
        {
            await _acks.WaitAsync(cancellationToken); // the last acks
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
                _deliveries.Failed($"The server closed a client: {_socket.CloseStatus} {_socket.CloseStatusDescription}");
                return;
            }

            var reader = new Utf8JsonReader(buffer.AsSpan(0, length));
            using var frame = JsonDocument.ParseValue(ref reader);
            switch (frame.RootElement.GetProperty("type").GetString())
            {
                case "message":
                    _deliveries.Received(frame.RootElement.GetProperty("text").GetString()!);

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
                    _deliveries.Failed($"The server answered with an error: {frame.RootElement.GetProperty("message").GetString()}");
                    break;
            }
        }
    }
}
