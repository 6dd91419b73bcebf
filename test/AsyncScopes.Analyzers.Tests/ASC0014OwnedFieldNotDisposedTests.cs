namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0014OwnedFieldNotDisposed>;
using VerifyFix = Verify<ASC0014OwnedFieldNotDisposed, ASC0014OwnedFieldNotDisposedFix>;

public sealed class ASC0014OwnedFieldNotDisposedTests
{
    private const string Usings = """
        using System;
        using System.Buffers;
        using System.Collections.Generic;
        using System.Data.Common;
        using System.IO;
        using System.Net.Sockets;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task A_chat_client_that_is_not_disposable_but_creates_its_WebSocket_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class ChatClient(Uri server)
            {
                private ClientWebSocket? {|#0:_socket|};

                public async Task ConnectAsync(CancellationToken ct)
                {
                    _socket = new ClientWebSocket();
                    await _socket.ConnectAsync(server, ct);
                }

                public Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct) =>
                    _socket!.SendAsync(frame, WebSocketMessageType.Text, true, ct).AsTask();
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_socket", "ClientWebSocket", "is created by 'ChatClient', which is not disposable: nothing disposes it"));
    }

    [Fact]
    public async Task A_timer_in_the_initializer_of_a_service_that_is_not_disposable_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class PresenceService
            {
                private readonly PeriodicTimer [|_sweep|] = new(TimeSpan.FromSeconds(30));

                public async Task RunAsync(Func<Task> sweep, CancellationToken stopping)
                {
                    while (await _sweep.WaitForNextTickAsync(stopping))
                    {
                        await sweep();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_that_forgets_the_linked_token_source_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Session : IDisposable
            {
                private readonly ClientWebSocket _socket = new();
                private readonly CancellationTokenSource {|#0:_closing|};

                public Session(CancellationToken stopping) => _closing = CancellationTokenSource.CreateLinkedTokenSource(stopping);

                public Task ReceiveAsync(Memory<byte> buffer) => _socket.ReceiveAsync(buffer, _closing.Token).AsTask();

                public void Dispose()
                {
                    _closing.Cancel();
                    _socket.Dispose();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_closing", "CancellationTokenSource", "is created by 'Session', whose disposal never disposes it"));
    }

    [Fact]
    public async Task A_timer_of_a_class_whose_inherited_Dispose_cannot_know_it_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            abstract class Component : IDisposable
            {
                public virtual void Dispose()
                {
                }
            }

            sealed class Pinger(Func<Task> ping) : Component
            {
                private readonly Timer [|_timer|] = new(_ => { }, null, TimeSpan.Zero, TimeSpan.FromSeconds(5));

                public Task PingAsync() => ping();
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_that_forgets_a_field_Dispose_disposes_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Export : IDisposable, IAsyncDisposable
            {
                private readonly FileStream _file;
                private readonly Socket {|#0:_upstream|};

                public Export(string path)
                {
                    _file = new FileStream(path, FileMode.Create);
                    _upstream = new Socket(SocketType.Stream, ProtocolType.Tcp);
                }

                public void Dispose()
                {
                    _file.Dispose();
                    _upstream.Dispose();
                }

                public async ValueTask DisposeAsync() => await _file.DisposeAsync();
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_upstream", "Socket", "is disposed by Dispose but not by DisposeAsync, which owners that await call instead"));
    }

    [Fact]
    public async Task A_reconnect_loop_that_replaces_the_socket_without_disposing_it_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Feed(Uri server, Func<WebSocket, Task> pump) : IDisposable
            {
                private ClientWebSocket? _socket;

                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        {|#0:_socket = new ClientWebSocket()|};
                        try
                        {
                            await _socket.ConnectAsync(server, stopping);
                            await pump(_socket);
                        }
                        catch (WebSocketException)
                        {
                        }
                    }
                }

                public void Dispose() => _socket?.Dispose();
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "_socket", "ClientWebSocket", "is replaced by a new object, in a loop or in a method a loop calls, without disposing the one it holds"));
    }

    [Fact]
    public async Task A_connect_method_a_retry_loop_calls_that_replaces_the_socket_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Upstream(string host, int port) : IDisposable
            {
                private TcpClient? _client;

                public async Task RunAsync(Func<NetworkStream, Task> serve, CancellationToken stopping)
                {
                    for (var attempt = 0; attempt < 5 && !stopping.IsCancellationRequested; attempt++)
                    {
                        try
                        {
                            await ConnectAsync(stopping);
                            await serve(_client!.GetStream());
                            return;
                        }
                        catch (SocketException)
                        {
                        }
                    }
                }

                private async Task ConnectAsync(CancellationToken ct)
                {
                    [|_client = new TcpClient()|];
                    await _client.ConnectAsync(host, port, ct);
                }

                public void Dispose() => _client?.Dispose();
            }
            """);
    }

    [Fact]
    public async Task Rented_memory_that_a_disposable_frame_buffer_forgets_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class FrameBuffer : IDisposable
            {
                private readonly IMemoryOwner<byte> [|_buffer|] = MemoryPool<byte>.Shared.Rent(16 * 1024);
                private readonly Stream _source;

                public FrameBuffer(string path) => _source = File.OpenRead(path);

                public ValueTask<int> ReadAsync(CancellationToken ct) => _source.ReadAsync(_buffer.Memory, ct);

                public void Dispose() => _source.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_connection_a_repository_opens_and_never_closes_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Repository(DbProviderFactory factory, string connectionString)
            {
                private DbConnection? [|_connection|];

                public async Task<DbConnection> ConnectionAsync(CancellationToken ct)
                {
                    if (_connection is null)
                    {
                        _connection = factory.CreateConnection()!;
                        _connection.ConnectionString = connectionString;
                        await _connection.OpenAsync(ct);
                    }

                    return _connection;
                }
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task A_class_that_disposes_every_field_it_creates_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Session : IAsyncDisposable
            {
                private readonly ClientWebSocket _socket = new();
                private readonly CancellationTokenSource _closing;
                private readonly PeriodicTimer _keepAlive = new(TimeSpan.FromSeconds(20));
                private FileStream? _log;

                public Session(CancellationToken stopping) => _closing = CancellationTokenSource.CreateLinkedTokenSource(stopping);

                public void StartLog(string path) => _log ??= new FileStream(path, FileMode.Append);

                public async ValueTask DisposeAsync()
                {
                    _closing.Cancel();
                    _keepAlive.Dispose();
                    _socket.Abort();
                    if (_log is not null)
                    {
                        await _log.DisposeAsync();
                    }

                    _closing.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_that_disposes_through_a_method_it_calls_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Heartbeat : IDisposable
            {
                private Timer? _timer;

                public void Start(TimerCallback beat) => _timer = new Timer(beat, null, TimeSpan.Zero, TimeSpan.FromSeconds(10));

                public void Stop()
                {
                    var timer = Interlocked.Exchange(ref _timer, null);
                    timer?.Dispose();
                }

                public void Dispose() => Stop();
            }
            """);
    }

    [Fact]
    public async Task Fields_given_to_the_class_are_not_its_to_dispose()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Sender(WebSocket socket, Stream log)
            {
                private readonly WebSocket _socket = socket;
                private readonly Stream _log = log;

                public async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
                {
                    await _log.WriteAsync(frame, ct);
                    await _socket.SendAsync(frame, WebSocketMessageType.Binary, true, ct);
                }
            }
            """);
    }

    [Fact]
    public async Task A_reconnect_loop_that_disposes_the_old_socket_first_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Feed(Uri server, Func<WebSocket, Task> pump) : IDisposable
            {
                private ClientWebSocket? _socket;

                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        _socket?.Dispose();
                        _socket = new ClientWebSocket();
                        try
                        {
                            await _socket.ConnectAsync(server, stopping);
                            await pump(_socket);
                        }
                        catch (WebSocketException)
                        {
                        }
                    }
                }

                public void Dispose() => _socket?.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_retry_loop_whose_iteration_ends_in_a_disconnect_that_disposes_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Upstream(string host, int port) : IDisposable
            {
                private TcpClient? _client;

                public async Task RunAsync(Func<NetworkStream, Task> serve, CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        try
                        {
                            await ConnectAsync(stopping);
                            await serve(_client!.GetStream());
                        }
                        catch (SocketException)
                        {
                        }
                        finally
                        {
                            Disconnect();
                        }
                    }
                }

                private async Task ConnectAsync(CancellationToken ct)
                {
                    _client = new TcpClient();
                    await _client.ConnectAsync(host, port, ct);
                }

                private void Disconnect()
                {
                    _client?.Close();
                    _client = null;
                }

                public void Dispose() => Disconnect();
            }
            """);
    }

    [Fact]
    public async Task A_class_that_is_not_disposable_but_stops_its_timer_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Ticker
            {
                private PeriodicTimer? _timer;

                public async Task RunAsync(Func<Task> tick, CancellationToken stopping)
                {
                    _timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
                    while (await _timer.WaitForNextTickAsync(stopping))
                    {
                        await tick();
                    }
                }

                public void Stop() => _timer?.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsyncCore_pattern_that_disposes_through_Dispose_of_bool_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class Store : IDisposable, IAsyncDisposable
            {
                private DbConnection? _connection;
                private readonly FileStream _journal = new("journal", FileMode.Append);

                public Store(DbProviderFactory factory) => _connection = factory.CreateConnection();

                public void Dispose()
                {
                    Dispose(disposing: true);
                    GC.SuppressFinalize(this);
                }

                public async ValueTask DisposeAsync()
                {
                    await DisposeAsyncCore();
                    Dispose(disposing: false);
                    GC.SuppressFinalize(this);
                }

                protected virtual void Dispose(bool disposing)
                {
                    if (disposing)
                    {
                        _connection?.Dispose();
                        _journal.Dispose();
                    }

                    _connection = null;
                }

                protected virtual async ValueTask DisposeAsyncCore()
                {
                    if (_connection is not null)
                    {
                        await _connection.DisposeAsync();
                    }

                    await _journal.DisposeAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_socket_handed_to_a_registry_and_objects_that_release_nothing_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Acceptor(Socket listener, ICollection<Socket> clients)
            {
                private readonly MemoryStream _scratch = new();
                private readonly CancellationTokenSource _stopping = new();
                private Socket? _last;

                public async Task AcceptAsync()
                {
                    _last = await listener.AcceptAsync(_stopping.Token);
                    clients.Add(_last);
                    _scratch.SetLength(0);
                }
            }
            """);
    }

    [Fact]
    public async Task A_retry_timer_armed_only_when_none_is_pending_is_not_reported()
    {
        // The shape of AsyncPool's MinIdle retry: an early return when a timer is already set guards the assignment.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Refill(TimeProvider time, Func<bool> tryFill) : IDisposable
            {
                private readonly object _lock = new();
                private ITimer? _retry;

                public void Fill()
                {
                    for (var attempt = 0; attempt < 3; attempt++)
                    {
                        if (tryFill())
                        {
                            return;
                        }
                    }

                    for (var pass = 0; pass < 2; pass++)
                    {
                        ScheduleRetry();
                    }
                }

                private void ScheduleRetry()
                {
                    lock (_lock)
                    {
                        if (_retry is not null)
                        {
                            return;
                        }

                        _retry = time.CreateTimer(_ => Fill(), null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
                    }
                }

                public void Dispose() => _retry?.Dispose();
            }
            """);
    }

    [Fact]
    public async Task The_timer_of_a_singleton_is_not_reported()
    {
        // MySqlConnector's TimerQueue: private constructor, one instance in a static property.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class TimerQueue
            {
                private readonly Timer _timer;

                private TimerQueue() => _timer = new Timer(_ => { }, null, Timeout.Infinite, Timeout.Infinite);

                public static TimerQueue Instance { get; } = new();

                public void Arm(TimeSpan due) => _timer.Change(due, Timeout.InfiniteTimeSpan);
            }
            """);
    }

    [Fact]
    public async Task A_reuse_cache_handed_to_callers_and_a_timer_stopped_through_the_base_disposal_are_not_reported()
    {
        // Npgsql's NpgsqlReadBuffer (a column stream created into a field and returned to the caller, who disposes it)
        // and PoolingDataSource (its pruning timer stopped with Change(Infinite) by Clear, which the base's Dispose calls).
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class ColumnStream(Stream source) : Stream
            {
                public bool IsDisposed { get; private set; }
                public override bool CanRead => true;
                public override bool CanSeek => false;
                public override bool CanWrite => false;
                public override long Length => 0;
                public override long Position { get; set; }
                public override void Flush() { }
                public override int Read(byte[] buffer, int offset, int count) => source.Read(buffer, offset, count);
                public override long Seek(long offset, SeekOrigin origin) => 0;
                public override void SetLength(long value) { }
                public override void Write(byte[] buffer, int offset, int count) { }
                protected override void Dispose(bool disposing) => IsDisposed = true;
            }

            sealed class ReadBuffer(Stream source) : IDisposable
            {
                private ColumnStream? _lastStream;

                public ColumnStream CreateStream()
                {
                    if (_lastStream is not { IsDisposed: true })
                    {
                        _lastStream = new ColumnStream(source);
                    }

                    return _lastStream;
                }

                public void Dispose() => source.Dispose();
            }

            abstract class DataSource : IDisposable
            {
                public void Dispose() => Clear();

                public abstract void Clear();
            }

            sealed class PoolingDataSource : DataSource
            {
                private readonly Timer _pruningTimer;
                private int _idle;

                public PoolingDataSource() => _pruningTimer = new Timer(_ => _idle--, null, Timeout.Infinite, Timeout.Infinite);

                public override void Clear()
                {
                    _idle = 0;
                    UpdatePruningTimer();
                }

                private void UpdatePruningTimer()
                {
                    if (_idle == 0)
                    {
                        _pruningTimer.Change(Timeout.Infinite, Timeout.Infinite);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Static_fields_that_live_as_long_as_the_process_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Clock
            {
                private static readonly PeriodicTimer Tick = new(TimeSpan.FromSeconds(1));

                public static ValueTask<bool> NextAsync(CancellationToken ct) => Tick.WaitForNextTickAsync(ct);
            }
            """);
    }

    [Fact]
    public async Task Releases_through_a_pattern_a_using_an_array_or_a_property_count()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Session : IDisposable
            {
                private readonly Socket _control = new(SocketType.Stream, ProtocolType.Tcp);
                private readonly Socket _data = new(SocketType.Stream, ProtocolType.Tcp);
                private readonly Stream _log = File.OpenWrite("session.log");
                private readonly PeriodicTimer _keepAlive = new(TimeSpan.FromSeconds(5));
                private readonly Timer _idle = new(_ => { }, null, Timeout.Infinite, Timeout.Infinite);

                public Stream Log => _log;

                public void Dispose()
                {
                    if (_control is { } control)
                    {
                        control.Dispose();
                    }

                    foreach (var owned in new IDisposable[] { _data, _keepAlive })
                    {
                        owned.Dispose();
                    }

                    using (_idle)
                    {
                    }

                    Log.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_loop_that_opens_other_instances_does_not_replace_this_ones_field()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Connection : IDisposable
            {
                private Socket? _socket;

                public void Open() => _socket = new Socket(SocketType.Stream, ProtocolType.Tcp);

                public static List<Connection> OpenAll(int count)
                {
                    var all = new List<Connection>();
                    for (var i = 0; i < count; i++)
                    {
                        var connection = new Connection();
                        connection.Open();
                        all.Add(connection);
                    }

                    return all;
                }

                public void Dispose() => _socket?.Dispose();
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_disposes_the_old_socket_before_the_reconnect_loop_replaces_it()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class Feed(Uri server, Func<WebSocket, Task> pump) : IDisposable
            {
                private ClientWebSocket? _socket;

                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        // A fresh socket for every attempt.
                        [|_socket = new ClientWebSocket()|];
                        try
                        {
                            await _socket.ConnectAsync(server, stopping);
                            await pump(_socket);
                        }
                        catch (WebSocketException)
                        {
                        }
                    }
                }

                public void Dispose() => _socket?.Dispose();
            }
            """,
            Usings + """
            sealed class Feed(Uri server, Func<WebSocket, Task> pump) : IDisposable
            {
                private ClientWebSocket? _socket;

                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        // A fresh socket for every attempt.
                        _socket?.Dispose();
                        _socket = new ClientWebSocket();
                        try
                        {
                            await _socket.ConnectAsync(server, stopping);
                            await pump(_socket);
                        }
                        catch (WebSocketException)
                        {
                        }
                    }
                }

                public void Dispose() => _socket?.Dispose();
            }
            """);
    }

    [Fact]
    public async Task The_fix_awaits_the_old_files_disposal_where_the_assignment_can_await()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class PartWriter(Func<int, string> pathOf) : IAsyncDisposable
            {
                private FileStream? _file;

                public async Task WriteAsync(IReadOnlyList<byte[]> parts, CancellationToken ct)
                {
                    for (var part = 0; part < parts.Count; part++)
                    {
                        [|_file = new FileStream(pathOf(part), FileMode.Create)|];
                        await _file.WriteAsync(parts[part], ct).ConfigureAwait(false);
                    }
                }

                public async ValueTask DisposeAsync()
                {
                    if (_file is not null)
                    {
                        await _file.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }
            """,
            Usings + """
            sealed class PartWriter(Func<int, string> pathOf) : IAsyncDisposable
            {
                private FileStream? _file;

                public async Task WriteAsync(IReadOnlyList<byte[]> parts, CancellationToken ct)
                {
                    for (var part = 0; part < parts.Count; part++)
                    {
                        if (_file != null)
                        {
                            await _file.DisposeAsync().ConfigureAwait(false);
                        }

                        _file = new FileStream(pathOf(part), FileMode.Create);
                        await _file.WriteAsync(parts[part], ct).ConfigureAwait(false);
                    }
                }

                public async ValueTask DisposeAsync()
                {
                    if (_file is not null)
                    {
                        await _file.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_replacement_inside_a_larger_expression_gets_no_fix()
    {
        await VerifyFix.NoFixAsync(Usings + """
            sealed class Feed(Uri server, Func<WebSocket, Task> pump) : IDisposable
            {
                private ClientWebSocket? _socket;

                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        await ([|_socket = new ClientWebSocket()|]).ConnectAsync(server, stopping);
                        await pump(_socket);
                    }
                }

                public void Dispose() => _socket?.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_replacement_made_from_the_old_object_gets_no_fix()
    {
        // Disposing the old source first would make CreateLinkedTokenSource read a disposed token source.
        await VerifyFix.NoFixAsync(Usings + """
            sealed class Session(Func<CancellationToken, Task> pump) : IDisposable
            {
                private CancellationTokenSource _stop = new(TimeSpan.FromMinutes(5));

                public async Task RunAsync(CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        [|_stop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, stopping)|];
                        await pump(_stop.Token);
                    }
                }

                public void Dispose() => _stop.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_field_whose_type_disposes_only_through_an_explicit_interface_gets_no_fix()
    {
        // `_session.DisposeAsync()` would not compile: the method is reachable only through IAsyncDisposable.
        await VerifyFix.NoFixAsync(Usings + """
            sealed class Session : IAsyncDisposable
            {
                async ValueTask IAsyncDisposable.DisposeAsync() => await Task.Yield();
            }

            sealed class Client : IAsyncDisposable
            {
                private Session? _session;

                public async Task RunAsync(Func<Session, Task> serve, CancellationToken stopping)
                {
                    while (!stopping.IsCancellationRequested)
                    {
                        [|_session = new Session()|];
                        await serve(_session);
                    }
                }

                public async ValueTask DisposeAsync()
                {
                    if (_session is IAsyncDisposable session)
                    {
                        await session.DisposeAsync();
                    }
                }
            }
            """);
    }
}
