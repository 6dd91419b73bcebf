using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using AsyncScopes;

namespace Chat.Tests.Support;

/// <summary>
/// A real <see cref="ClientWebSocket"/> client of the chat. A receive loop collects the server's frames, answers its
/// pings (unless told not to) and answers its close frame; a test reads the frames in order.
/// </summary>
internal sealed class ChatClient : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly HttpMessageInvoker _invoker;
    private readonly Socket _tcp;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>();
    private readonly TaskCompletionSource<WebSocketCloseStatus?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<JsonElement> _setAside = [];
    private readonly bool _answerPings;
    private Task _receiving;
    private readonly SemaphoreSlim _pingsUnread = new(0);
    private int _pings;
    private volatile bool _answerClose = true;
    private bool _receivingStarted;

    private ChatClient(ClientWebSocket socket, HttpMessageInvoker invoker, Socket tcp, bool answerPings, bool receive)
    {
        _socket = socket;
        _invoker = invoker;
        _tcp = tcp;
        _answerPings = answerPings;
        _receiving = receive ? ReceiveLoopAsync() : Task.CompletedTask;
        _receivingStarted = receive;
    }

    /// <summary>Completes with the status of the server's close frame, or null when the connection ended without one.</summary>
    public Task<WebSocketCloseStatus?> Closed => _closed.Task;

    /// <summary>The reason of the server's close frame.</summary>
    public string? CloseReason => _socket.CloseStatusDescription;

    /// <summary>Pings received from the server.</summary>
    public int Pings => Volatile.Read(ref _pings);

    /// <summary>Connects through a socket of its own, so that a test can reset it.</summary>
    /// <param name="uri">The chat's WebSocket address.</param>
    /// <param name="answerPings">Whether the client answers the server's pings with pongs.</param>
    /// <param name="receive">Whether the client reads at all; one that does not lets the server's frames pile up.</param>
    /// <param name="receiveBufferSize">The TCP receive buffer, set before connecting; null for the system's.</param>
    /// <param name="headers">Request headers of the handshake, as a client may send any.</param>
    public static async Task<ChatClient> ConnectAsync(
        Uri uri, bool answerPings = true, bool receive = true, int? receiveBufferSize = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        Socket? tcp = null;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                if (receiveBufferSize is { } size)
                {
                    socket.ReceiveBufferSize = size;
                }

                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }

                tcp = socket;
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        var invoker = new HttpMessageInvoker(handler);
        var client = new ClientWebSocket();
        client.Options.CollectHttpResponseDetails = true;
        client.Options.KeepAliveInterval = TimeSpan.Zero; // no pong frames of its own: every frame a test counts is one it sent
        foreach ((string name, string value) in headers ?? new Dictionary<string, string>())
        {
            client.Options.SetRequestHeader(name, value);
        }

        try
        {
            using var timeout = new CancellationTokenSource(ChatServer.Patience);
            await client.ConnectAsync(uri, invoker, timeout.Token);
        }
        catch
        {
            client.Dispose();
            invoker.Dispose();
            throw;
        }

        return new ChatClient(client, invoker, tcp!, answerPings, receive);
    }

    /// <summary>Tries to connect, which must fail; returns the HTTP status of the refused handshake.</summary>
    public static async Task<int> RefusedAsync(Uri uri)
    {
        using var client = new ClientWebSocket();
        client.Options.CollectHttpResponseDetails = true;
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        await Assert.ThrowsAsync<WebSocketException>(() => client.ConnectAsync(uri, timeout.Token));
        return (int)client.HttpStatusCode;
    }

    public Task SendAsync(string text) => SendJsonAsync(JsonSerializer.Serialize(new { text }));

    public Task SendJsonAsync(string json) => SendRawAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text);

    public async Task SendRawAsync(ReadOnlyMemory<byte> payload, WebSocketMessageType type, bool endOfMessage = true)
    {
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        using (await _sendLock.LockAsync(timeout.Token))
        {
            await _socket.SendAsync(payload, type, endOfMessage, timeout.Token);
        }
    }

    /// <summary>The next frame other than a ping (one set aside by <see cref="ReceiveAsync(string)"/> first); fails
    /// when none arrives in time, or the connection ended.</summary>
    public async Task<JsonElement> ReceiveAsync(TimeSpan? within = null)
    {
        if (_setAside.Count > 0)
        {
            JsonElement first = _setAside[0];
            _setAside.RemoveAt(0);
            return first;
        }

        using var timeout = new CancellationTokenSource(within ?? ChatServer.Patience);
        return await _frames.Reader.ReadAsync(timeout.Token);
    }

    /// <summary>The next frame of <paramref name="type"/>; frames of other types before it are set aside, in order,
    /// for the next reads.</summary>
    public async Task<JsonElement> ReceiveAsync(string type)
    {
        int index = _setAside.FindIndex(frame => TypeOf(frame) == type);
        if (index >= 0)
        {
            JsonElement found = _setAside[index];
            _setAside.RemoveAt(index);
            return found;
        }

        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        while (true)
        {
            JsonElement frame = await _frames.Reader.ReadAsync(timeout.Token);
            if (TypeOf(frame) == type)
            {
                return frame;
            }

            _setAside.Add(frame);
        }
    }

    /// <summary>Frames received and not read yet, in order.</summary>
    public List<JsonElement> Drain()
    {
        List<JsonElement> frames = [.. _setAside];
        _setAside.Clear();
        while (_frames.Reader.TryRead(out JsonElement frame))
        {
            frames.Add(frame);
        }

        return frames;
    }

    public static string? TypeOf(JsonElement frame) => frame.GetProperty("type").GetString();

    /// <summary>Waits for the server's close frame and returns its status; fails when none arrives in time.</summary>
    public async Task<WebSocketCloseStatus?> WaitClosedAsync() => await Closed.WaitAsync(ChatServer.Patience);

    /// <summary>Waits for the next ping not waited for yet (its pong, if the client answers, is sent by then).</summary>
    public async Task WaitForPingAsync() => Assert.True(await _pingsUnread.WaitAsync(ChatServer.Patience), "No ping came.");

    /// <summary>From now on, the client takes note of the server's close frame but never answers it.</summary>
    public void StopAnsweringClose() => _answerClose = false;

    /// <summary>Starts reading, for a client connected with <c>receive: false</c>.</summary>
    public void StartReceiving()
    {
        Assert.False(_receivingStarted, "The client is reading already.");
        _receivingStarted = true;
        _receiving = ReceiveLoopAsync();
    }

    /// <summary>Closes the connection as a well-behaved client does.</summary>
    public async Task CloseAsync()
    {
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        using (await _sendLock.LockAsync(timeout.Token))
        {
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
        }

        await Closed.WaitAsync(ChatServer.Patience);
    }

    /// <summary>Drops the connection without a close frame.</summary>
    public void Abort() => _socket.Abort();

    /// <summary>Resets the TCP connection: the server sees an RST, no close frame and no FIN.</summary>
    public void Reset()
    {
        _tcp.LingerState = new LingerOption(true, 0);
        _tcp.Close();
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Abort();
        await _receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        _invoker.Dispose();
        _sendLock.Dispose();
        _pingsUnread.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                ValueWebSocketReceiveResult result = await _socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // Noted before answering: a server that has gone on to drop the connection makes the answer fail.
                    _closed.TrySetResult(_socket.CloseStatus);
                    if (_answerClose && _socket.State == WebSocketState.CloseReceived)
                    {
                        using (await _sendLock.LockAsync())
                        {
                            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                        }
                    }

                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }

                JsonElement frame = JsonDocument.Parse(message.ToArray()).RootElement;
                message.SetLength(0);
                if (frame.GetProperty("type").GetString() == "ping")
                {
                    if (_answerPings)
                    {
                        await SendJsonAsync("""{"type":"pong"}""");
                    }

                    Interlocked.Increment(ref _pings); // after the pong is sent
                    _pingsUnread.Release();

                    continue;
                }

                _frames.Writer.TryWrite(frame);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            _closed.TrySetResult(null); // ended without a close frame
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }
}
