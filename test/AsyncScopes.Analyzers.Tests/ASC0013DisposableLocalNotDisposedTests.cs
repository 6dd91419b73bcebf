namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0013DisposableLocalNotDisposed>;
using VerifyFix = Verify<ASC0013DisposableLocalNotDisposed, ASC0013DisposableLocalNotDisposedFix>;

public sealed class ASC0013DisposableLocalNotDisposedTests
{
    private const string Usings = """
        using System;
        using System.Buffers;
        using System.Collections.Generic;
        using System.Data.Common;
        using System.IO;
        using System.Net;
        using System.Net.Sockets;
        using System.Net.WebSockets;
        using System.Text;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task A_chat_client_whose_WebSocket_is_never_disposed_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class ChatClient
            {
                public async Task SendAsync(Uri server, string text, CancellationToken ct)
                {
                    var socket = {|#0:new ClientWebSocket()|};
                    await socket.ConnectAsync(server, ct);
                    await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, ct);
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", ct);
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("socket", "ClientWebSocket", "is never disposed"));
    }

    [Fact]
    public async Task A_linked_token_source_a_handler_never_disposes_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Handler(Func<CancellationToken, Task> work)
            {
                public async Task HandleAsync(CancellationToken requestAborted, CancellationToken stopping)
                {
                    var linked = {|#0:CancellationTokenSource.CreateLinkedTokenSource(requestAborted, stopping)|};
                    linked.CancelAfter(TimeSpan.FromSeconds(30));
                    await work(linked.Token);
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("linked", "CancellationTokenSource", "is never disposed"));
    }

    [Fact]
    public async Task A_file_disposed_only_after_an_await_that_can_throw_is_reported_at_the_await()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Export
            {
                public async Task WriteAsync(string path, ReadOnlyMemory<byte> data, CancellationToken ct)
                {
                    var file = {|#0:new FileStream(path, FileMode.Create)|};
                    {|#1:await file.WriteAsync(data, ct)|};
                    await file.DisposeAsync();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(1).WithArguments(
                "file", "FileStream", "is not disposed if the await at line 17 throws: dispose it in a finally, or declare it with 'using'"));
    }

    [Fact]
    public async Task A_socket_assigned_by_a_statement_on_either_branch_is_followed_from_each_assignment()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class ChatClient
            {
                public async Task SendAsync(Uri server, byte[] text, IWebProxy? proxy, CancellationToken ct)
                {
                    ClientWebSocket socket;
                    if (proxy is null)
                    {
                        socket = {|#0:new ClientWebSocket()|};
                    }
                    else
                    {
                        socket = {|#1:new ClientWebSocket { Options = { Proxy = proxy } }|};
                    }

                    {|#2:await socket.ConnectAsync(server, ct)|};
                    await socket.SendAsync(text, WebSocketMessageType.Text, true, ct);
                    socket.Dispose();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(2).WithArguments(
                "socket", "ClientWebSocket", "is not disposed if the await at line 26 throws: dispose it in a finally, or declare it with 'using'"),
            VerifyCS.Diagnostic().WithLocation(1).WithLocation(2).WithArguments(
                "socket", "ClientWebSocket", "is not disposed if the await at line 26 throws: dispose it in a finally, or declare it with 'using'"));
    }

    [Fact]
    public async Task A_probe_connection_and_a_timer_dropped_as_soon_as_created_are_reported()
    {
        // The client's socket stays open until the garbage collector finds it; the timer may be collected and stop.
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Health(Action sweep)
            {
                public void Probe(string host) => {|#0:new TcpClient(host, 80)|};

                public void StartSweeping()
                {
                    _ = {|#1:new Timer(_ => sweep(), null, 1000, 1000)|};
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("new TcpClient(host, 80)", "TcpClient", "is dropped as soon as it is created: nothing disposes it"),
            VerifyCS.Diagnostic().WithLocation(1).WithArguments("new Timer(_ => sweep(), null, 1000, 1000)", "Timer", "is dropped as soon as it is created: nothing disposes it"));
    }

    [Fact]
    public async Task A_connection_left_open_by_an_early_return_is_reported_at_the_return()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Users(DbProviderFactory factory, string connectionString)
            {
                public async Task<string?> NameAsync(int id, CancellationToken ct)
                {
                    var connection = {|#0:factory.CreateConnection()|}!;
                    connection.ConnectionString = connectionString;
                    if (id <= 0)
                    {
                        {|#1:return null;|}
                    }

                    try
                    {
                        await connection.OpenAsync(ct);
                        var command = connection.CreateCommand();
                        command.CommandText = "select name from users where id = " + id;
                        return (string?)await command.ExecuteScalarAsync(ct);
                    }
                    finally
                    {
                        await connection.DisposeAsync();
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(1).WithArguments("connection", "DbConnection", "is not disposed on the path that leaves at line 20"));
    }

    [Fact]
    public async Task A_periodic_timer_of_a_background_loop_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Heartbeat(Func<Task> beat)
            {
                public async Task RunAsync(CancellationToken stopping)
                {
                    var timer = [|new PeriodicTimer(TimeSpan.FromSeconds(15))|];
                    while (await timer.WaitForNextTickAsync(stopping))
                    {
                        await beat();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_socket_a_factory_returns_is_reported_when_the_connect_before_can_throw()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed record Connection(TcpClient Client);

            static class Connector
            {
                public static async Task<Connection> ConnectAsync(string host, int port, CancellationToken ct)
                {
                    var client = {|#0:new TcpClient()|};
                    {|#1:await client.ConnectAsync(host, port, ct)|};
                    return new Connection(client);
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(1).WithArguments(
                "client", "TcpClient", "is not disposed if the await at line 19 throws: dispose it in a finally, or declare it with 'using'"));
    }

    [Fact]
    public async Task A_reconnect_loop_that_retries_without_disposing_the_failed_socket_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Feed(Uri server, Func<WebSocket, Task> pump)
            {
                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        var socket = {|#0:new ClientWebSocket()|};
                        try
                        {
                            {|#1:await socket.ConnectAsync(server, stopping)|};
                        }
                        catch (WebSocketException)
                        {
                            continue;
                        }

                        await pump(socket);
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(1).WithArguments(
                "socket", "ClientWebSocket", "is not disposed if the await at line 21 throws: dispose it in a finally, or declare it with 'using'"));
    }

    [Fact]
    public async Task A_queue_loop_that_skips_an_empty_turn_before_its_try_is_reported_at_the_next_assignment()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            using System.Collections.Concurrent;

            sealed class Worker(ConcurrentQueue<string> queue, Func<string, CancellationToken, Task> handle)
            {
                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        {|#1:var linked = {|#0:CancellationTokenSource.CreateLinkedTokenSource(stopping)|};|}
                        linked.CancelAfter(TimeSpan.FromSeconds(10));
                        if (!queue.TryDequeue(out var item))
                        {
                            await Task.Yield();
                            continue;
                        }

                        try
                        {
                            await handle(item, linked.Token);
                        }
                        finally
                        {
                            linked.Dispose();
                        }
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(1).WithArguments("linked", "CancellationTokenSource", "is still undisposed when line 20 assigns 'linked' again"));
    }

    [Fact]
    public async Task A_socket_created_with_an_object_initializer_is_followed_too()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            static class Connector
            {
                public static async Task<Stream> OpenAsync(string host, int port, CancellationToken ct)
                {
                    var client = [|new TcpClient { NoDelay = true }|];
                    await client.ConnectAsync(host, port, ct);
                    return client.GetStream();
                }
            }
            """);
    }

    [Fact]
    public async Task Rented_memory_never_returned_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Reader(Stream source)
            {
                public async Task<int> ReadFrameAsync(CancellationToken ct)
                {
                    var buffer = [|MemoryPool<byte>.Shared.Rent(4096)|];
                    return await source.ReadAsync(buffer.Memory, ct);
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_token_source_and_a_reader_in_a_repository_are_both_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Messages(DbConnection connection)
            {
                public async Task<List<string>> RecentAsync()
                {
                    var timeout = [|new CancellationTokenSource(TimeSpan.FromSeconds(5))|];
                    await using var command = connection.CreateCommand();
                    command.CommandText = "select text from messages order by id desc limit 50";
                    var reader = [|await command.ExecuteReaderAsync(timeout.Token)|];
                    var texts = new List<string>();
                    while (await reader.ReadAsync(timeout.Token))
                    {
                        texts.Add(reader.GetString(0));
                    }

                    return texts;
                }
            }
            """);
    }

    [Fact]
    public async Task A_listener_left_behind_by_a_throw_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            static class Probe
            {
                public static Socket Listen(int port, int backlog)
                {
                    var listener = {|#0:new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)|};
                    listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
                    if (backlog <= 0)
                    {
                        {|#1:throw new ArgumentOutOfRangeException(nameof(backlog));|}
                    }

                    listener.Listen(backlog);
                    return listener;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(1).WithArguments("listener", "Socket", "is not disposed on the path that leaves at line 20"));
    }

    [Fact]
    public async Task A_resource_created_in_an_async_lambda_is_followed_through_the_lambda()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Uploader
            {
                public Task StartAsync(string path, Func<Stream, Task> upload) => Task.Run(async () =>
                {
                    var file = [|File.OpenRead(path)|];
                    await file.CopyToAsync(Stream.Null);
                    await upload(Stream.Null);
                });
            }
            """);
    }

    [Fact]
    public async Task A_socket_taken_out_of_a_registry_and_never_closed_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            using System.Collections.Concurrent;

            sealed class Hub
            {
                private readonly ConcurrentDictionary<Guid, WebSocket> _clients = new();

                public void Forget(Guid id)
                {
                    if (_clients.TryRemove(id, {|#0:out var socket|}))
                    {
                        Console.WriteLine($"{id} left in state {socket.State}");
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("socket", "WebSocket", "is never disposed"));
    }

    // Negative cases.

    [Fact]
    public async Task Resources_declared_with_using_or_await_using_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class ChatClient
            {
                public async Task SendAsync(Uri server, byte[] text, CancellationToken ct)
                {
                    using var socket = new ClientWebSocket();
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    await using var file = new FileStream("log.txt", FileMode.Append);
                    using (var timer = new PeriodicTimer(TimeSpan.FromSeconds(1)))
                    {
                        await socket.ConnectAsync(server, linked.Token);
                        await timer.WaitForNextTickAsync(linked.Token);
                        await socket.SendAsync(text, WebSocketMessageType.Text, true, linked.Token);
                        await file.WriteAsync(text, ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_creation_a_lambda_tests_for_its_exception_or_returns_is_not_dropped()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            static class Checks
            {
                public static Exception? Fails(string path) => Record(() => new FileStream(path, FileMode.Open));

                public static Func<Stream> Opener(string path) => () => File.OpenRead(path);

                public static Exception? FailsInABlock(string path) => Record(() => { new FileStream(path, FileMode.Open); });

                public static long LengthOpenedByACallback(string path)
                {
                    // The lambda gives the outer function's local its value; the outer function disposes it.
                    Stream? stream = null;
                    Action open = () => { stream = File.OpenRead(path); };
                    open();
                    var length = stream!.Length;
                    stream.Dispose();
                    return length;
                }

                private static Exception? Record(Action open)
                {
                    try
                    {
                        open();
                        return null;
                    }
                    catch (IOException failure)
                    {
                        return failure;
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task An_ssl_stream_over_the_connectors_own_stream_left_by_a_settings_error_is_the_connectors()
    {
        // Npgsql's NpgsqlConnector.NegotiateEncryption: a settings check throws before the handshake; the SslStream
        // holds nothing of its own yet, and the connector's failure path closes the stream it wraps.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Net.Security;

            sealed class Connector
            {
                private Stream _stream = Stream.Null;

                public async Task NegotiateAsync(SslClientAuthenticationOptions options, bool verifyFull, CancellationToken ct)
                {
                    try
                    {
                        var sslStream = new SslStream(_stream, leaveInnerStreamOpen: false);
                        if (verifyFull && options.RemoteCertificateValidationCallback is not null)
                        {
                            throw new ArgumentException("A custom validation callback cannot verify the full chain.");
                        }

                        try
                        {
                            await sslStream.AuthenticateAsClientAsync(options, ct);
                            _stream = sslStream;
                            sslStream = null;
                        }
                        finally
                        {
                            sslStream?.Dispose();
                        }
                    }
                    catch
                    {
                        _stream.Dispose();
                        throw;
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_resource_disposed_in_a_finally_with_a_null_check_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class ChatClient
            {
                public async Task SendAsync(Uri server, byte[] text, CancellationToken ct)
                {
                    ClientWebSocket? socket = null;
                    CancellationTokenSource? linked = null;
                    try
                    {
                        linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        socket = new ClientWebSocket();
                        await socket.ConnectAsync(server, linked.Token);
                        await socket.SendAsync(text, WebSocketMessageType.Text, true, linked.Token);
                    }
                    finally
                    {
                        socket?.Dispose();
                        if (linked != null)
                        {
                            linked.Dispose();
                        }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_factory_that_disposes_in_its_catch_and_returns_the_object_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            static class Connector
            {
                public static async Task<TcpClient> ConnectAsync(string host, int port, CancellationToken ct)
                {
                    var client = new TcpClient();
                    try
                    {
                        await client.ConnectAsync(host, port, ct);
                    }
                    catch
                    {
                        client.Dispose();
                        throw;
                    }

                    return client;
                }
            }
            """);
    }

    [Fact]
    public async Task A_TcpClient_whose_stream_is_returned_is_handed_on_with_its_socket()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            static class Connector
            {
                public static async Task<Stream> OpenAsync(string host, int port, bool noDelay, CancellationToken ct)
                {
                    var client = new TcpClient { NoDelay = noDelay };
                    try
                    {
                        await client.ConnectAsync(host, port, ct);
                    }
                    catch
                    {
                        client.Dispose();
                        throw;
                    }

                    // The stream owns the socket: disposing it closes the connection.
                    return client.GetStream();
                }
            }
            """);
    }

    [Fact]
    public async Task A_resource_stored_in_a_field_added_to_a_registry_or_wrapped_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Net.Security;

            sealed class Server : IDisposable
            {
                private readonly List<Socket> _clients = new();
                private PeriodicTimer? _timer;

                public void Start() => _timer = new PeriodicTimer(TimeSpan.FromSeconds(1));

                public void Accept(Socket listener)
                {
                    var client = listener.Accept();
                    _clients.Add(client);
                }

                public SslStream Secure(Socket socket)
                {
                    var network = new NetworkStream(socket, ownsSocket: true);
                    return new SslStream(network);
                }

                public void Dispose()
                {
                    _timer?.Dispose();
                    _clients.ForEach(client => client.Dispose());
                }
            }
            """);
    }

    [Fact]
    public async Task Objects_whose_disposal_releases_nothing_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Formatter
            {
                public async Task<byte[]> FormatAsync(Func<Stream, CancellationToken, Task> write)
                {
                    var cancel = new CancellationTokenSource();
                    var buffer = new MemoryStream();
                    var text = new StringWriter();
                    await write(buffer, cancel.Token);
                    text.Write(buffer.Length);
                    return buffer.ToArray();
                }
            }
            """);
    }

    [Fact]
    public async Task A_resource_a_lambda_disposes_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Deadline
            {
                public CancellationToken Start(CancellationToken outer, TimeSpan limit)
                {
                    var linked = CancellationTokenSource.CreateLinkedTokenSource(outer);
                    linked.CancelAfter(limit);
                    linked.Token.Register(() => linked.Dispose());
                    return linked.Token;
                }
            }
            """);
    }

    [Fact]
    public async Task An_await_whose_failure_a_catch_handles_before_the_disposal_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Probe
            {
                public async Task<bool> CanConnectAsync(Uri server, CancellationToken ct)
                {
                    var socket = new ClientWebSocket();
                    var connected = false;
                    try
                    {
                        await socket.ConnectAsync(server, ct);
                        connected = true;
                    }
                    catch (WebSocketException)
                    {
                    }

                    socket.Dispose();
                    return connected;
                }
            }
            """);
    }

    [Fact]
    public async Task A_loop_that_disposes_each_socket_before_it_goes_round_again_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Feed(Uri server, Func<WebSocket, Task> pump)
            {
                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        var socket = new ClientWebSocket();
                        try
                        {
                            await socket.ConnectAsync(server, stopping);
                            await pump(socket);
                        }
                        catch (WebSocketException)
                        {
                            socket.Dispose();
                            continue;
                        }

                        socket.Dispose();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Awaiting_another_disposal_before_this_one_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Copy
            {
                public async Task CopyAsync(string from, string to, CancellationToken ct)
                {
                    var source = File.OpenRead(from);
                    var target = File.Create(to);
                    try
                    {
                        await source.CopyToAsync(target, ct);
                    }
                    finally
                    {
                        await target.DisposeAsync();
                        await source.DisposeAsync();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_resource_closed_where_its_type_documents_Close_as_disposal_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            static class Ping
            {
                public static void Send(IPEndPoint to, byte[] datagram)
                {
                    var client = new UdpClient();
                    try
                    {
                        client.Send(datagram, datagram.Length, to);
                    }
                    finally
                    {
                        client.Close();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_pattern_variable_that_disposes_the_object_is_the_object()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Probe
            {
                public async Task<ClientWebSocket?> ConnectAsync(Uri uri, CancellationToken ct)
                {
                    ClientWebSocket? socket = null;
                    try
                    {
                        socket = new ClientWebSocket();
                        await socket.ConnectAsync(uri, ct);
                        return socket;
                    }
                    catch (WebSocketException)
                    {
                        if (socket is not null and var failed)
                        {
                            failed.Dispose();
                        }

                        return null;
                    }
                }

                public async Task ReadAsync(string path, Memory<byte> buffer, CancellationToken ct)
                {
                    Stream source = File.OpenRead(path);
                    try
                    {
                        await source.ReadAsync(buffer, ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        switch (source)
                        {
                            case IAsyncDisposable disposable:
                                await disposable.DisposeAsync();
                                break;
                        }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task An_assignment_inside_a_using_or_another_assignment_gives_the_value_to_it()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Reader
            {
                private ClientWebSocket? _socket;

                public async Task<long> LengthAsync(string path, byte[] buffer, CancellationToken ct)
                {
                    FileStream stream;
                    using (stream = File.OpenRead(path))
                    {
                        await stream.ReadAsync(buffer, ct);
                    }

                    ClientWebSocket socket;
                    _socket = socket = new ClientWebSocket();
                    await socket.ConnectAsync(new Uri("ws://localhost"), ct);
                    return buffer.Length;
                }
            }
            """);
    }

    [Fact]
    public async Task Close_with_a_timeout_CloseAsync_and_Close_through_an_interface_count_as_disposal()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Data;

            sealed class Closing(DbProviderFactory factory)
            {
                public void Send(byte[] datagram, IPEndPoint to)
                {
                    var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                    try
                    {
                        socket.SendTo(datagram, to);
                    }
                    finally
                    {
                        socket.Close(5);
                    }
                }

                public async Task<int> CountAsync(CancellationToken ct)
                {
                    var connection = factory.CreateConnection()!;
                    try
                    {
                        await connection.OpenAsync(ct);
                        var command = connection.CreateCommand();
                        command.CommandText = "select count(*) from users";
                        var reader = await command.ExecuteReaderAsync(ct);
                        try
                        {
                            return await reader.ReadAsync(ct) ? reader.GetInt32(0) : 0;
                        }
                        finally
                        {
                            await reader.CloseAsync();
                        }
                    }
                    finally
                    {
                        await connection.CloseAsync();
                    }
                }

                public int Count()
                {
                    IDbConnection connection = factory.CreateConnection()!;
                    try
                    {
                        connection.Open();
                        using var command = connection.CreateCommand();
                        command.CommandText = "select count(*) from users";
                        return (int)command.ExecuteScalar()!;
                    }
                    finally
                    {
                        connection.Close();
                    }
                }

                public void Tick(Action tick)
                {
                    var timer = new System.Timers.Timer(1000);
                    timer.Elapsed += (_, _) => tick();
                    timer.Start();
                    timer.Close();
                }
            }
            """);
    }

    [Fact]
    public async Task A_connection_handed_to_its_reader_with_CloseConnection_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Data;

            sealed class Users(DbProviderFactory factory, string connectionString)
            {
                public async Task<DbDataReader> StreamAsync(CancellationToken ct)
                {
                    var connection = factory.CreateConnection()!;
                    try
                    {
                        connection.ConnectionString = connectionString;
                        await connection.OpenAsync(ct);
                        var command = connection.CreateCommand();
                        command.CommandText = "select name from users";
                        return await command.ExecuteReaderAsync(CommandBehavior.CloseConnection, ct);
                    }
                    catch
                    {
                        await connection.DisposeAsync();
                        throw;
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Writers_transactions_and_a_programs_own_objects_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Buffers;
            using System.Text.Json;
            using System.Xml;

            static class Program
            {
                static async Task Main()
                {
                    var server = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                    server.Listen();
                    while (true)
                    {
                        using var client = await server.AcceptAsync();
                    }
                }

                static string Xml(string name)
                {
                    var text = new StringBuilder();
                    var writer = XmlWriter.Create(text);
                    writer.WriteElementString("n", name);
                    writer.Flush();
                    var json = new Utf8JsonWriter(new ArrayBufferWriter<byte>());
                    json.WriteStartObject();
                    json.Flush();
                    return text.ToString();
                }

                static async Task MoveAsync(DbConnection connection, CancellationToken ct)
                {
                    await connection.OpenAsync(ct);
                    var transaction = await connection.BeginTransactionAsync(ct);
                    await transaction.CommitAsync(ct);
                }
            }
            """);
    }

    [Fact]
    public async Task A_file_lent_to_a_copy_or_a_serializer_is_still_the_functions_to_dispose()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            using System.IO.Compression;
            using System.Text.Json;

            static class Export
            {
                public static async Task SaveAsync(Stream source, string path, CancellationToken ct)
                {
                    var file = [|File.Create(path)|];
                    await source.CopyToAsync(file, ct);
                }

                public static async Task WriteAsync<T>(T value, string path, CancellationToken ct)
                {
                    var file = [|File.Create(path)|];
                    var zip = {|#0:new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true)|};
                    {|#1:await JsonSerializer.SerializeAsync(zip, value, cancellationToken: ct)|};
                    await zip.DisposeAsync();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithLocation(1).WithArguments(
                "zip", "GZipStream", "is not disposed if the await at line 27 throws: dispose it in a finally, or declare it with 'using'"));
    }

    [Fact]
    public async Task A_replacement_that_takes_over_this_objects_state_is_not_reported()
    {
        // MySqlConnector's MySqlConnection: a new connection takes this one's session and is swapped into a registry.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Connection : DbConnection
            {
                private static readonly Dictionary<string, List<Connection>> Enlisted = new();

                public override string ConnectionString { get; set; } = "";
                public override string Database => "";
                public override string DataSource => "";
                public override string ServerVersion => "";
                public override System.Data.ConnectionState State => System.Data.ConnectionState.Open;

                public void Detach(string key)
                {
                    var replacement = new Connection();
                    replacement.TakeSessionFrom(this);
                    lock (Enlisted)
                    {
                        if (Enlisted.TryGetValue(key, out var list))
                        {
                            list.Remove(this);
                        }
                    }
                }

                private void TakeSessionFrom(Connection other) => ConnectionString = other.ConnectionString;

                public override void ChangeDatabase(string databaseName) { }
                public override void Close() { }
                public override void Open() { }
                protected override DbTransaction BeginDbTransaction(System.Data.IsolationLevel isolationLevel) => throw new NotSupportedException();
                protected override DbCommand CreateDbCommand() => throw new NotSupportedException();
            }
            """);
    }

    [Fact]
    public async Task A_socket_taken_out_of_a_registry_and_closed_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Collections.Concurrent;

            sealed class Hub
            {
                private readonly ConcurrentDictionary<Guid, WebSocket> _clients = new();
                private readonly Dictionary<Guid, Socket> _raw = new();

                public async Task ForgetAsync(Guid id, CancellationToken ct)
                {
                    if (!_clients.TryRemove(id, out var socket))
                    {
                        return;
                    }

                    try
                    {
                        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", ct);
                    }
                    finally
                    {
                        socket.Dispose();
                    }

                    if (_raw.Remove(id, out var raw))
                    {
                        raw.Close();
                    }
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_declares_an_async_disposable_with_await_using_and_drops_the_final_disposal()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class Export
            {
                public async Task WriteAsync(string path, ReadOnlyMemory<byte> data, CancellationToken ct)
                {
                    var file = [|new FileStream(path, FileMode.Create)|];
                    await file.WriteAsync(data, ct);
                    await file.DisposeAsync();
                }
            }
            """,
            Usings + """
            sealed class Export
            {
                public async Task WriteAsync(string path, ReadOnlyMemory<byte> data, CancellationToken ct)
                {
                    await using var file = new FileStream(path, FileMode.Create);
                    await file.WriteAsync(data, ct);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_declares_a_token_source_with_using()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class Handler(Func<CancellationToken, Task> work)
            {
                public async Task HandleAsync(CancellationToken requestAborted, CancellationToken stopping)
                {
                    // Whichever ends first.
                    var linked = [|CancellationTokenSource.CreateLinkedTokenSource(requestAborted, stopping)|];
                    await work(linked.Token);
                }
            }
            """,
            Usings + """
            sealed class Handler(Func<CancellationToken, Task> work)
            {
                public async Task HandleAsync(CancellationToken requestAborted, CancellationToken stopping)
                {
                    // Whichever ends first.
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, stopping);
                    await work(linked.Token);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_is_not_offered_for_an_object_a_path_hands_on()
    {
        await VerifyFix.NoFixAsync(Usings + """
            sealed record Connection(TcpClient Client);

            static class Connector
            {
                public static async Task<Connection> ConnectAsync(string host, int port, CancellationToken ct)
                {
                    var client = [|new TcpClient()|];
                    await client.ConnectAsync(host, port, ct);
                    return new Connection(client);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_is_not_offered_when_a_disposal_in_the_middle_would_move_to_the_end()
    {
        await VerifyFix.NoFixAsync(Usings + """
            sealed class Export
            {
                public async Task WriteAsync(string path, string final, ReadOnlyMemory<byte> data, CancellationToken ct)
                {
                    var file = [|new FileStream(path, FileMode.Create)|];
                    await file.WriteAsync(data, ct);
                    file.Dispose();
                    File.Move(path, final);
                }
            }
            """);
    }

    [Fact]
    public async Task A_socket_written_to_a_channel_is_handed_on()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using System.Threading.Channels;

            sealed class Acceptor(Socket listener)
            {
                private readonly Channel<Socket> _connections = Channel.CreateUnbounded<Socket>();

                public async Task AcceptAsync(CancellationToken ct)
                {
                    while (!ct.IsCancellationRequested)
                    {
                        var socket = await listener.AcceptAsync(ct);
                        await _connections.Writer.WriteAsync(socket, ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_keeps_the_declared_type_and_removes_only_the_final_disposal()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class Export
            {
                public async Task WriteAsync(string path, CancellationToken ct)
                {
                    IDisposable file = [|new FileStream(path, FileMode.Create)|];
                    await Task.Delay(1, ct);
                    file.Dispose();
                }
            }
            """,
            Usings + """
            sealed class Export
            {
                public async Task WriteAsync(string path, CancellationToken ct)
                {
                    using IDisposable file = new FileStream(path, FileMode.Create);
                    await Task.Delay(1, ct);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_is_not_offered_where_a_task_is_returned_without_awaiting()
    {
        await VerifyFix.NoFixAsync(Usings + """
            sealed class Reader
            {
                public Task<int> ReadAsync(string path, byte[] buffer)
                {
                    var file = [|File.OpenRead(path)|];
                    return file.ReadAsync(buffer, 0, buffer.Length);
                }
            }
            """);
    }
}
