using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Chat.Tests.Support;

/// <summary>
/// A TCP relay on 127.0.0.1 in front of the tests' PostgreSQL server that passes every connection through, but holds
/// those of one application name (as the connection's startup message gives it) until <see cref="Release"/>: a
/// connection that the server has not answered yet, for as long as a test needs.
/// </summary>
internal sealed class PostgresRelay : IAsyncDisposable
{
    // The codes that stand where a startup message's protocol version is, asking to encrypt first: refused ('N').
    private const int SslRequest = 80877103;
    private const int GssEncryptionRequest = 80877104;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly DnsEndPoint _server;
    private readonly string _heldApplicationName;
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _relays = [];
    private readonly Task _accepting;

    /// <param name="connectionString">The database's connection string.</param>
    /// <param name="heldApplicationName">The application name whose connections are held.</param>
    public PostgresRelay(string connectionString, string heldApplicationName)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString);
        _server = new DnsEndPoint(settings.Host!, settings.Port);
        _heldApplicationName = heldApplicationName;
        _listener.Start();
        settings.Host = "127.0.0.1";
        settings.Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        ConnectionString = settings.ConnectionString;
        _accepting = AcceptAsync();
    }

    /// <summary>The database's connection string, through the relay.</summary>
    public string ConnectionString { get; }

    /// <summary>Completes when a connection of the held application name has arrived, and waits.</summary>
    public Task Held => _held.Task;

    /// <summary>Lets the held connections, and those that come later, through.</summary>
    public void Release() => _released.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Task[] relays;
        lock (_relays)
        {
            relays = [.. _relays];
        }

        await Task.WhenAll(relays).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
            lock (_relays)
            {
                _relays.Add(RelayAsync(client));
            }
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using (client)
        using (var server = new TcpClient())
        {
            NetworkStream fromClient = client.GetStream();
            byte[] startup = await ReadStartupAsync(fromClient);
            if (ApplicationName(startup) == _heldApplicationName)
            {
                _held.TrySetResult();
                await _released.Task.WaitAsync(_stop.Token);
            }

            await server.ConnectAsync(_server.Host, _server.Port, _stop.Token);
            NetworkStream toServer = server.GetStream();
            await toServer.WriteAsync(startup, _stop.Token);

            // Either side's end ends both.
            using var ended = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            Task up = fromClient.CopyToAsync(toServer, ended.Token);
            Task down = toServer.CopyToAsync(fromClient, ended.Token);
            await Task.WhenAny(up, down);
            await ended.CancelAsync();
            await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    // The client's startup message, after refusing any request to encrypt: a length (itself included) and a protocol
    // version, both big-endian 32-bit integers, then key and value pairs, each a string ending with a zero byte.
    private async Task<byte[]> ReadStartupAsync(NetworkStream client)
    {
        while (true)
        {
            byte[] length = new byte[4];
            await client.ReadExactlyAsync(length, _stop.Token);
            byte[] message = new byte[BinaryPrimitives.ReadInt32BigEndian(length)];
            length.CopyTo(message, 0);
            await client.ReadExactlyAsync(message.AsMemory(4), _stop.Token);
            int code = BinaryPrimitives.ReadInt32BigEndian(message.AsSpan(4));
            if (code is not (SslRequest or GssEncryptionRequest))
            {
                return message;
            }

            await client.WriteAsync("N"u8.ToArray(), _stop.Token);
        }
    }

    private static string? ApplicationName(byte[] startup)
    {
        string[] fields = Encoding.UTF8.GetString(startup, 8, startup.Length - 8).Split('\0');
        for (int i = 0; i + 1 < fields.Length; i += 2)
        {
            if (fields[i] == "application_name")
            {
                return fields[i + 1];
            }
        }

        return null;
    }
}
