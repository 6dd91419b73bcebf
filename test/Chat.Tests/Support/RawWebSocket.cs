using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Chat.Tests.Support;

/// <summary>
/// A WebSocket client written frame by frame on a TCP socket, for what no WebSocket API sends on request: pings,
/// empty fragments, by the thousand.
/// </summary>
internal sealed class RawWebSocket : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawWebSocket(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>Connects and completes the opening handshake (101), or throws.</summary>
    public static async Task<RawWebSocket> ConnectAsync(Uri uri)
    {
        var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(uri.Host, uri.Port);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }

        var socket = new RawWebSocket(tcp);
        try
        {
            string key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            string request = $"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
            await socket._stream.WriteAsync(Encoding.ASCII.GetBytes(request));
            string response = await socket.ReadHeadAsync();
            Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);
            return socket;
        }
        catch
        {
            await socket.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends one masked frame: <paramref name="opcode"/> (1 text, 0 continuation, 9 ping), with or without FIN.</summary>
    public ValueTask SendFrameAsync(int opcode, bool fin, ReadOnlySpan<byte> payload)
    {
        // Short payloads only (under 126 bytes): all these floods need.
        Assert.True(payload.Length < 126);
        byte[] frame = new byte[2 + 4 + payload.Length];
        frame[0] = (byte)((fin ? 0x80 : 0) | opcode);
        frame[1] = (byte)(0x80 | payload.Length);
        RandomNumberGenerator.Fill(frame.AsSpan(2, 4));
        for (int i = 0; i < payload.Length; i++)
        {
            frame[6 + i] = (byte)(payload[i] ^ frame[2 + (i % 4)]);
        }

        return _stream.WriteAsync(frame);
    }

    /// <summary>Sends up to <paramref name="count"/> empty frames of <paramref name="opcode"/>, stopping when the server
    /// has dropped the connection; returns how many were sent.</summary>
    public async Task<int> SendFramesUntilDroppedAsync(int opcode, int count)
    {
        for (int sent = 0; sent < count; sent++)
        {
            try
            {
                await SendFrameAsync(opcode, fin: true, []);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                return sent;
            }
        }

        return count;
    }

    /// <summary>Reads the server's frames until its close frame; returns the close status, or null when the connection
    /// ended without one. Other frames are skipped.</summary>
    public async Task<int?> ReadUntilCloseAsync()
    {
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        byte[] head = new byte[2];
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(head, timeout.Token);
                long length = head[1] & 0x7F;
                if (length == 126)
                {
                    byte[] extended = new byte[2];
                    await _stream.ReadExactlyAsync(extended, timeout.Token);
                    length = BinaryPrimitives.ReadUInt16BigEndian(extended);
                }
                else if (length == 127)
                {
                    byte[] extended = new byte[8];
                    await _stream.ReadExactlyAsync(extended, timeout.Token);
                    length = (long)BinaryPrimitives.ReadUInt64BigEndian(extended);
                }

                byte[] payload = new byte[length];
                await _stream.ReadExactlyAsync(payload, timeout.Token);
                if ((head[0] & 0x0F) == 8)
                {
                    return payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(payload) : null;
                }
            }
        }
        catch (EndOfStreamException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<string> ReadHeadAsync()
    {
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        var head = new StringBuilder();
        byte[] one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            await _stream.ReadExactlyAsync(one, timeout.Token);
            head.Append((char)one[0]);
        }

        return head.ToString();
    }
}
