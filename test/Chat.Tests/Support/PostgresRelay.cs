using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Chat.Tests.Support;

/// <summary>
/// A TCP relay on 127.0.0.1 in front of the tests' PostgreSQL server that passes every connection through, but holds
/// those of one application name (as the connection's startup message gives it) until <see cref="Release"/>: a
/// connection that the server has not answered yet, for as long as a test needs. It can also lose the answer to a
/// commit (<see cref="CutAfterNextCommit"/>), and hold or refuse new connections (<see cref="HoldNew"/>,
/// <see cref="RefuseNew"/>, <see cref="AdmitNew"/>).
/// </summary>
internal sealed class PostgresRelay : IAsyncDisposable
{
    // The codes that stand where a startup message's protocol version is, asking to encrypt first: refused ('N').
    private const int SslRequest = 80877103;
    private const int GssEncryptionRequest = 80877104;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly DnsEndPoint _server;
    private readonly string? _heldApplicationName;
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _cut = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _cutArmed;
    private Admission _admission = new(AdmissionMode.Admit);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _relays = [];
    private readonly Task _accepting;

    /// <param name="connectionString">The database's connection string.</param>
    /// <param name="heldApplicationName">The application name whose connections are held; null for none.</param>
    public PostgresRelay(string connectionString, string? heldApplicationName)
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

    /// <summary>New connections wait, until <see cref="RefuseNew"/> or <see cref="AdmitNew"/>.</summary>
    /// <returns>Completes once a new connection waits.</returns>
    public Task HoldNew() => SetAdmission(AdmissionMode.Hold).Waiting.Task;

    /// <summary>New connections, and those waiting, are refused, as by a server that has no room for them (53300,
    /// too many connections).</summary>
    public void RefuseNew() => SetAdmission(AdmissionMode.Refuse);

    /// <summary>New connections, and those waiting, go through.</summary>
    public void AdmitNew() => SetAdmission(AdmissionMode.Admit);

    /// <summary>
    /// The next <c>COMMIT</c> that a client sends reaches the server, which commits, but the server's answer does not
    /// reach the client: the relay ends that connection instead, as a network that failed at that moment would.
    /// </summary>
    /// <returns>Completes once the answer was withheld and the connection ended.</returns>
    public Task CutAfterNextCommit()
    {
        Volatile.Write(ref _cutArmed, 1);
        return _cut.Task;
    }

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
            if (_heldApplicationName is not null && ApplicationName(startup) == _heldApplicationName)
            {
                _held.TrySetResult();
                await _released.Task.WaitAsync(_stop.Token);
            }

            while (Volatile.Read(ref _admission) is { Mode: not AdmissionMode.Admit } admission)
            {
                if (admission.Mode == AdmissionMode.Refuse)
                {
                    await fromClient.WriteAsync(TooManyConnections(), _stop.Token);
                    return;
                }

                admission.Waiting.TrySetResult();
                await admission.Changed.Task.WaitAsync(_stop.Token);
            }

            await server.ConnectAsync(_server.Host, _server.Port, _stop.Token);
            NetworkStream toServer = server.GetStream();
            await toServer.WriteAsync(startup, _stop.Token);

            // Either side's end ends both.
            using var ended = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var withholding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task up = UpAsync(fromClient, toServer, withholding, ended.Token);
            Task down = DownAsync(toServer, fromClient, withholding.Task, ended.Token);
            await Task.WhenAny(up, down);
            await ended.CancelAsync();
            await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    // Client to server; when a cut is armed, the first COMMIT (a simple query, as Npgsql sends it) makes this
    // connection withhold what the server sends next, which is that COMMIT's answer: Npgsql waits for each answer
    // before it sends more.
    private async Task UpAsync(NetworkStream client, NetworkStream server, TaskCompletionSource withholding, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[64 * 1024];
        int read;
        while ((read = await client.ReadAsync(buffer, cancellationToken)) > 0)
        {
            // Withholding before the COMMIT goes on: its answer cannot come sooner.
            if (buffer.AsSpan(0, read).IndexOf("COMMIT\0"u8) >= 0 && Interlocked.Exchange(ref _cutArmed, 0) == 1)
            {
                withholding.TrySetResult();
            }

            await server.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
    }

    // Server to client, until the connection withholds: then what the server sends next (the commit's answer) ends it.
    private async Task DownAsync(NetworkStream server, NetworkStream client, Task withholding, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[64 * 1024];
        int read;
        while ((read = await server.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (withholding.IsCompleted)
            {
                _cut.TrySetResult();
                return;
            }

            await client.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
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

    private Admission SetAdmission(AdmissionMode mode)
    {
        var admission = new Admission(mode);
        Interlocked.Exchange(ref _admission, admission).Changed.TrySetResult();
        return admission;
    }

    // The server's answer to a startup it refuses (an ErrorResponse: its type, its length, then fields of a code
    // byte and a string ending with a zero byte, then a zero byte): the client gives up, where a connection closed
    // during its startup would have it try again.
    private static byte[] TooManyConnections()
    {
        byte[] fields = Encoding.UTF8.GetBytes("SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0\0");
        byte[] message = new byte[1 + 4 + fields.Length];
        message[0] = (byte)'E';
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + fields.Length);
        fields.CopyTo(message, 5);
        return message;
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

    private enum AdmissionMode
    {
        Admit,
        Hold,
        Refuse,
    }

    // What happens to new connections; Changed completes when it changes, Waiting once a connection waits under it.
    private sealed record Admission(AdmissionMode Mode)
    {
        public TaskCompletionSource Changed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Waiting { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
