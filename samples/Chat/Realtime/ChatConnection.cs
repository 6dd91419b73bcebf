using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using AsyncScopes;
using Chat.Telemetry;

namespace Chat.Realtime;

/// <summary>
/// One WebSocket client. It runs as one <see cref="TaskScope"/> with three children: the receive loop, the send loop
/// and the heartbeat. When one fails, the scope cancels the other two (which aborts the socket), and
/// <see cref="RunAsync"/> returns only when all three have ended: nothing of a connection outlives it. The scope runs
/// under the silence timeout, a <see cref="MovableDeadline"/> that every frame received pushes forward: when the client
/// has sent nothing for <see cref="ChatOptions.SilenceTimeout"/>, it fires, and the connection is aborted.
/// </summary>
/// <remarks>
/// <para>Only the send loop writes to the socket. Frames for the client wait in a bounded queue; a client that lets it
/// fill up is closed with 1008 rather than growing memory.</para>
/// <para>Closing is a request (<see cref="RequestClose"/>): the send loop drops what is still queued, sends the final
/// frame if there is one, then the close frame; the receive loop reads on until the client's close frame. The
/// heartbeat gives the client <see cref="ChatOptions.CloseTimeout"/> to answer, then aborts.</para>
/// </remarks>
internal sealed class ChatConnection
{
    private static readonly TaskScopeOptions ScopeOptions = new() { Name = "chat connection" };

    private readonly WebSocket _socket;
    private readonly ChatOptions _options;
    private readonly TimeProvider _time;
    private readonly Func<ChatConnection, string, CancellationToken, Task> _post;
    private readonly Channel<ReadOnlyMemory<byte>> _outgoing;
    private readonly TaskCompletionSource _closeRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CloseRequest? _close;

    /// <param name="socket">The accepted socket; the caller disposes it after <see cref="RunAsync"/>.</param>
    /// <param name="room">The room the client joined.</param>
    /// <param name="name">The client's name.</param>
    /// <param name="options">Limits and timings.</param>
    /// <param name="time">The clock of the heartbeat and of the silence timeout.</param>
    /// <param name="budget">The frames the client may send, counted as they arrive (<see cref="FrameCountingStream"/>);
    /// when it is spent, the connection is closed with 1008.</param>
    /// <param name="post">Stores and broadcasts a valid message text from this client; it reports its own failures
    /// to the client.</param>
    public ChatConnection(
        WebSocket socket,
        string room,
        string name,
        ChatOptions options,
        TimeProvider time,
        ReceiveBudget budget,
        Func<ChatConnection, string, CancellationToken, Task> post)
    {
        _socket = socket;
        Room = room;
        Name = name;
        _options = options;
        _time = time;
        _post = post;
        _outgoing = Channel.CreateBounded<ReadOnlyMemory<byte>>(
            new BoundedChannelOptions(options.SendQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        budget.OnSpent(() => RequestClose(
            WebSocketCloseStatus.PolicyViolation,
            $"Too many messages: at most {options.ReceiveFramesPerSecond:0.##} a second."));
    }

    public string Room { get; }

    public string Name { get; }

    /// <summary>
    /// Completes once nothing more will be done for this client's last message that went to the store: its ack was
    /// offered to the send queue (which drops it when full), or it was not stored, or the store closed first. An error
    /// for a later frame waits for it (<see cref="PostErrorAsync"/>). Read and written only by the receive loop's flow,
    /// one frame at a time.
    /// </summary>
    public Task LastAnswer { get; set; } = Task.CompletedTask;

    /// <summary>
    /// Queues an error frame once the answer to the client's previous message is out: an error carries no id, and a
    /// client matches answers to its frames by their order. Waits at most <see cref="ChatOptions.CloseTimeout"/> (on
    /// PostgreSQL an ack waits for the node to read its message back, which an outage of its listening connection
    /// delays), so that the receive loop, which reads the client's pongs, is never held for long; after that the
    /// error goes out all the same.
    /// </summary>
    public async Task PostErrorAsync(ReadOnlyMemory<byte> error, CancellationToken cancellationToken)
    {
        await LastAnswer.WaitAsync(_options.CloseTimeout, _time, cancellationToken)
            .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        cancellationToken.ThrowIfCancellationRequested();
        TryPost(error);
    }

    /// <summary>The status of the close frame this side sends (or sent); null while the connection is open.</summary>
    public WebSocketCloseStatus? CloseStatus => Volatile.Read(ref _close)?.Status;

    /// <summary>
    /// Queues a frame for the client without waiting. When the queue is full the client is too slow: it is closed
    /// with 1008 and the frame is dropped.
    /// </summary>
    /// <returns>False when the frame was dropped: the queue is full or the connection is closing.</returns>
    public bool TryPost(ReadOnlyMemory<byte> frame)
    {
        if (_outgoing.Writer.TryWrite(frame))
        {
            return true;
        }

        RequestClose(
            WebSocketCloseStatus.PolicyViolation,
            $"Too slow: more than {_options.SendQueueCapacity} frames waiting.");
        return false;
    }

    /// <summary>
    /// Asks the connection to close with <paramref name="status"/>; the first request wins, later ones do nothing.
    /// </summary>
    /// <param name="status">The close status sent to the client.</param>
    /// <param name="reason">The close reason (at most 123 bytes of UTF-8).</param>
    /// <param name="finalFrame">A frame sent just before the close frame, such as an error that explains it.</param>
    public void RequestClose(WebSocketCloseStatus status, string reason, ReadOnlyMemory<byte> finalFrame = default)
    {
        if (Interlocked.CompareExchange(ref _close, new CloseRequest(status, reason, finalFrame), null) is null)
        {
            _outgoing.Writer.TryComplete();
            _closeRequested.TrySetResult();
        }
    }

    /// <summary>Runs the connection until it is closed, aborted or cancelled.</summary>
    /// <param name="cancellationToken">Aborts the connection: the socket is aborted without a close frame.</param>
    /// <returns>A task that completes once the receive loop, the send loop and the heartbeat have all ended. It
    /// faults with the first failure: a <see cref="WebSocketException"/> when the client vanished, a
    /// <see cref="TimeoutException"/> when it went silent or did not answer a close.</returns>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // Stops the heartbeat once both loops have ended; not the scope's token, so that a normal end is not a cancellation.
        using var loopsEnded = new CancellationTokenSource();
        using MovableDeadline silence = MovableDeadline.After(_options.SilenceTimeout, cancellationToken, _time);
        try
        {
            await TaskScope.RunAsync(
                async scope =>
                {
                    Task receive = scope.Start(ct => ReceiveLoopAsync(silence, ct));
                    Task send = scope.Start(SendLoopAsync);
                    _ = scope.Start(ct => HeartbeatLoopAsync(ct, loopsEnded.Token));
                    try
                    {
                        await Task.WhenAll(receive, send).ConfigureAwait(false);
                    }
                    finally
                    {
                        await loopsEnded.CancelAsync().ConfigureAwait(false);
                    }
                },
                silence.Token,
                ScopeOptions).ConfigureAwait(false);
        }
        catch (Exception e) when (silence.Expired && !cancellationToken.IsCancellationRequested)
        {
            // The deadline cancelled the scope, which aborted the socket: whatever the loops threw then is its doing.
            throw new TimeoutException($"The client was silent for {_options.SilenceTimeout.TotalSeconds:0.#} s.", e);
        }
    }

    private async Task ReceiveLoopAsync(MovableDeadline silence, CancellationToken cancellationToken)
    {
        int limit = _options.MaxFrameBytes;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(limit);
        try
        {
            while (true)
            {
                int length = 0;
                ValueWebSocketReceiveResult result;
                try
                {
                    do
                    {
                        if (length == limit)
                        {
                            // The rest of an oversized message is read and dropped while the close goes out.
                            RequestClose(WebSocketCloseStatus.MessageTooBig, $"A message has at most {limit} bytes.");
                            length = 0;
                        }

                        result = await _socket.ReceiveAsync(buffer.AsMemory(length, limit - length), cancellationToken)
                            .ConfigureAwait(false);
                        length += result.Count;
                    }
                    while (!result.EndOfMessage);
                }
                catch (WebSocketException) when (_socket.State == WebSocketState.CloseSent && Volatile.Read(ref _close) is null)
                {
                    // The socket refused the frame itself (text that is not UTF-8) and sent a close frame: wait for the
                    // client's answer to it, as for a close of our own.
                    RequestClose(WebSocketCloseStatus.InvalidPayloadData, "Text frames must be UTF-8.");
                    continue;
                }

                silence.Reschedule(_time.GetUtcNow() + _options.SilenceTimeout); // heard: the silence starts again
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // The client's close, which the send loop echoes, or its answer to ours, which ends the handshake.
                    RequestClose(_socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, string.Empty);
                    return;
                }

                if (Volatile.Read(ref _close) is not null)
                {
                    continue; // closing: only the client's close frame matters now
                }

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    RequestClose(WebSocketCloseStatus.InvalidMessageType, "Only text frames are accepted.");
                }
                else
                {
                    await OnTextAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task OnTextAsync(ReadOnlyMemory<byte> utf8, CancellationToken cancellationToken)
    {
        ClientFrame? frame;
        try
        {
            frame = JsonSerializer.Deserialize(utf8.Span, ChatJson.Default.ClientFrame);
        }
        catch (JsonException e)
        {
            RequestClose(WebSocketCloseStatus.InvalidPayloadData, "Malformed JSON.", Frames.Error(ChatInput.DescribeJsonError(e, "The frame")));
            return;
        }

        switch (frame)
        {
            case null:
                RequestClose(WebSocketCloseStatus.InvalidPayloadData, "Malformed JSON.", Frames.Error("The frame is not valid JSON, or not of the expected shape: a frame is an object."));
                break;
            case { Type: "pong" }:
                break; // being heard was the point
            case { Type: null or "message" }:
                if (ChatInput.CheckText(frame.Text, _options.MaxMessageLength) is { } error)
                {
                    await PostErrorAsync(Frames.Error(error), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    using Activity? span = ChatTelemetry.Source.StartActivity("chat.receive", ActivityKind.Consumer);
                    span?.SetTag(ChatTelemetry.RoomTag, Room);
                    await _post(this, frame.Text!, cancellationToken).ConfigureAwait(false);
                }

                break;
            default:
                await PostErrorAsync(
                    Frames.Error($"Unknown frame type '{frame.Type}': send {{\"text\": \"...\"}} or {{\"type\": \"pong\"}}."), cancellationToken)
                    .ConfigureAwait(false);
                break;
        }
    }

    private async Task SendLoopAsync(CancellationToken cancellationToken)
    {
        ChannelReader<ReadOnlyMemory<byte>> reader = _outgoing.Reader;

        // Ends when RequestClose completes the queue; what is still queued then is dropped.
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (Volatile.Read(ref _close) is null && reader.TryRead(out ReadOnlyMemory<byte> frame))
            {
                await _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, cancellationToken)
                    .ConfigureAwait(false);
            }

            if (Volatile.Read(ref _close) is not null)
            {
                break;
            }
        }

        CloseRequest close = Volatile.Read(ref _close)!;
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            if (!close.FinalFrame.IsEmpty)
            {
                await _socket.SendAsync(close.FinalFrame, WebSocketMessageType.Text, endOfMessage: true, cancellationToken)
                    .ConfigureAwait(false);
            }

            await _socket.CloseOutputAsync(close.Status, close.Reason, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken scopeToken, CancellationToken loopsEnded)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(scopeToken, loopsEnded);
        CancellationToken cancellationToken = linked.Token;
        try
        {
            while (Volatile.Read(ref _close) is null)
            {
                await Task.WhenAny(Task.Delay(_options.HeartbeatInterval, _time, cancellationToken), _closeRequested.Task)
                    .ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                if (Volatile.Read(ref _close) is not null)
                {
                    break;
                }

                TryPost(Frames.Ping); // a client that answers is heard: its silence timeout moves on
            }

            await Task.Delay(_options.CloseTimeout, _time, cancellationToken).ConfigureAwait(false);
            throw new TimeoutException(
                $"The client did not answer the close within {_options.CloseTimeout.TotalSeconds:0.#} s.");
        }
        catch (OperationCanceledException) when (loopsEnded.IsCancellationRequested && !scopeToken.IsCancellationRequested)
        {
            // Both loops ended: nothing is left to watch.
        }
    }

    private sealed record CloseRequest(WebSocketCloseStatus Status, string Reason, ReadOnlyMemory<byte> FinalFrame);
}
