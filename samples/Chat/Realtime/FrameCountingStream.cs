using Microsoft.AspNetCore.Http.Features;

namespace Chat.Realtime;

/// <summary>
/// The stream under a client's WebSocket: it reads the frame headers of what the client sends, and takes one frame
/// from the client's <see cref="ReceiveBudget"/> for each, pings, pongs and empty fragments included, which the
/// <see cref="System.Net.WebSockets.WebSocket"/> above it answers or skips without ever returning them to the service.
/// </summary>
/// <remarks>It only reads along: the bytes go up unchanged. Installed by <see cref="Install"/>, in place of the
/// request's upgrade, before the WebSocket middleware takes that upgrade.</remarks>
internal sealed class FrameCountingStream(Stream inner, ReceiveBudget budget) : Stream
{
    /// <summary>The key of the budget in <see cref="HttpContext.Items"/>, for the endpoint that accepts the socket.</summary>
    public static readonly object BudgetKey = new();

    // Where the parser is in the current frame: its header's bytes still to read, and then its payload's.
    private int _headerRead;
    private int _headerLength = 2;
    private long _payloadLeft;
    private readonly byte[] _header = new byte[14];

    /// <summary>
    /// The middleware: for a WebSocket request, puts a budget in <see cref="HttpContext.Items"/> and the upgrade in
    /// a wrapper whose stream counts the client's frames against it.
    /// </summary>
    public static Task Install(HttpContext context, RequestDelegate next)
    {
        // HTTP/1.1 upgrades the connection; HTTP/2 opens a stream with an extended CONNECT (RFC 8441).
        IHttpUpgradeFeature? upgrade = context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } http1 ? http1 : null;
        IHttpExtendedConnectFeature? connect = context.Features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } http2 ? http2 : null;
        if (upgrade is not null || connect is not null)
        {
            ChatOptions options = context.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<ChatOptions>>().Value;
            var budget = new ReceiveBudget(options.ReceiveBurst, options.ReceiveFramesPerSecond, context.RequestServices.GetRequiredService<TimeProvider>());
            context.Items[BudgetKey] = budget;
            if (upgrade is not null)
            {
                context.Features.Set<IHttpUpgradeFeature>(new CountingUpgrade(upgrade, budget));
            }

            if (connect is not null)
            {
                context.Features.Set<IHttpExtendedConnectFeature>(new CountingConnect(connect, budget));
            }
        }

        return next(context);
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Count(buffer.Span[..read]);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        int read = inner.Read(buffer, offset, count);
        Count(buffer.AsSpan(offset, read));
        return read;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    // RFC 6455, 5.2: two bytes, then 2 or 8 bytes of extended length, then 4 bytes of mask (client frames are masked),
    // then the payload. A frame is counted once its header is whole.
    private void Count(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            if (_payloadLeft > 0)
            {
                int skipped = (int)Math.Min(_payloadLeft, bytes.Length);
                _payloadLeft -= skipped;
                bytes = bytes[skipped..];
                continue;
            }

            _header[_headerRead++] = bytes[0];
            bytes = bytes[1..];
            if (_headerRead == 2)
            {
                int length7 = _header[1] & 0x7F;
                int mask = (_header[1] & 0x80) != 0 ? 4 : 0;
                _headerLength = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + mask;
            }

            if (_headerRead >= 2 && _headerRead == _headerLength)
            {
                int length7 = _header[1] & 0x7F;
                _payloadLeft = length7 switch
                {
                    126 => (_header[2] << 8) | _header[3],
                    127 => (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2, 8)) & long.MaxValue,
                    _ => length7,
                };
                _headerRead = 0;
                _headerLength = 2;

                // The WebSocket above would read and answer a flood for as long as the close handshake may take:
                // past a burst more, it reads nothing more, and the connection is aborted.
                if (!budget.TryTake() && budget.IsFlooding)
                {
                    throw new IOException("The client went on sending after its receive budget was spent.");
                }
            }
        }
    }

    /// <summary>The request's extended CONNECT, whose stream is counted.</summary>
    private sealed class CountingConnect(IHttpExtendedConnectFeature inner, ReceiveBudget budget) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync() => new FrameCountingStream(await inner.AcceptAsync().ConfigureAwait(false), budget);
    }

    /// <summary>The request's upgrade, whose stream is counted.</summary>
    private sealed class CountingUpgrade(IHttpUpgradeFeature inner, ReceiveBudget budget) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync() => new FrameCountingStream(await inner.UpgradeAsync().ConfigureAwait(false), budget);
    }
}
