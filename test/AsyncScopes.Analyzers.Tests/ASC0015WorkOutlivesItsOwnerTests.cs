namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0015WorkOutlivesItsOwner>;

public sealed class ASC0015WorkOutlivesItsOwnerTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Data.Common;
        using System.IO;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Channels;
        using System.Threading.Tasks;
        using Microsoft.Extensions.Hosting;

        """;

    // Positive cases.

    [Fact]
    public async Task A_query_task_returned_from_inside_the_using_of_its_connection_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Users(DbProviderFactory factory)
            {
                public Task<object?> CountAsync(CancellationToken ct)
                {
                    using var connection = factory.CreateConnection()!;
                    var command = connection.CreateCommand();
                    command.CommandText = "select count(*) from users";
                    return {|#0:command.ExecuteScalarAsync(ct)|};
                }

                public Task OpenAsync(CancellationToken ct)
                {
                    using (var connection = factory.CreateConnection()!)
                    {
                        return {|#1:connection.OpenAsync(ct)|};
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'command.ExecuteScalarAsync(...)' is returned from inside the using of 'connection', which disposes it as soon as this returns, before the work ends: make the method async and await it"),
            VerifyCS.Diagnostic().WithLocation(1).WithArguments(
                "'connection.OpenAsync(...)' is returned from inside the using of 'connection', which disposes it as soon as this returns, before the work ends: make the method async and await it"));
    }

    [Fact]
    public async Task A_copy_returned_from_inside_the_using_of_its_file_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            static class Files
            {
                public static Task CopyAsync(string path, Stream destination, CancellationToken ct)
                {
                    using var source = File.OpenRead(path);
                    return [|source.CopyToAsync(destination, ct)|];
                }
            }
            """);
    }

    [Fact]
    public async Task Writes_dropped_inside_the_using_of_their_file_are_reported()
    {
        // The file is closed at the end of the block while the write may still run: the data is lost, or the write
        // throws ObjectDisposedException where nobody sees it.
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            static class Transcript
            {
                public static void Save(string path, byte[] data)
                {
                    using (var file = File.Create(path))
                    {
                        _ = {|#0:file.WriteAsync(data, 0, data.Length)|};
                    }
                }

                public static void SaveInBackground(string path, byte[] data)
                {
                    using var file = File.Create(path);
                    {|#1:Task.Run(() => file.Write(data, 0, data.Length))|};
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'file.WriteAsync(...)' uses 'file' and is dropped inside its using, which disposes it while the work may still run: await the task before the block ends"),
            VerifyCS.Diagnostic().WithLocation(1).WithArguments(
                "'Task.Run(...)' uses 'file' and is dropped inside its using, which disposes it while the work may still run: await the task before the block ends"));
    }

    [Fact]
    public async Task StartNew_of_an_async_lambda_awaited_once_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Pump(ChannelReader<string> reader, Func<string, Task> send)
            {
                public async Task RunAsync()
                {
                    await {|#0:Task.Factory.StartNew(async () =>
                    {
                        await foreach (var message in reader.ReadAllAsync())
                        {
                            await send(message);
                        }
                    }, TaskCreationOptions.LongRunning)|};
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "Task.Factory.StartNew of an async delegate gives a Task<Task> whose outer task completes at the delegate's first await: the work itself is not awaited; use Task.Run, or .Unwrap() the result"));
    }

    [Fact]
    public async Task StartNew_of_an_async_lambda_kept_as_a_plain_Task_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Worker(Func<Task> work) : IAsyncDisposable
            {
                private readonly Task _loop;

                public Worker(Func<Task> work, bool start) : this(work) => _loop = [|Task.Factory.StartNew(async () => await work())|];

                public async ValueTask DisposeAsync() => await _loop;
            }
            """);
    }

    [Fact]
    public async Task A_receive_loop_a_disposable_session_starts_and_drops_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Session(WebSocket socket) : IDisposable
            {
                private readonly CancellationTokenSource _closing = new();

                public void Start() => _ = {|#0:ReceiveLoopAsync()|};

                private async Task ReceiveLoopAsync()
                {
                    var buffer = new byte[4096];
                    while (!_closing.IsCancellationRequested)
                    {
                        await socket.ReceiveAsync(buffer, _closing.Token);
                    }
                }

                public void Dispose() => _closing.Cancel();
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'Session' is disposable, but the background loop 'ReceiveLoopAsync()' it starts is dropped: nothing waits for it when it stops, and what it throws is lost; keep its task and await it on disposal"));
    }

    [Fact]
    public async Task A_hosted_service_that_drops_the_loop_it_runs_with_Task_Run_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Outbox(ChannelReader<string> pending, Func<string, Task> deliver) : IHostedService
            {
                public Task StartAsync(CancellationToken cancellationToken)
                {
                    {|#0:Task.Run(async () =>
                    {
                        while (await pending.WaitToReadAsync())
                        {
                            await deliver(await pending.ReadAsync());
                        }
                    })|};
                    return Task.CompletedTask;
                }

                public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'Outbox' is a hosted service, but the background loop 'Task.Run(...)' it starts is dropped: nothing waits for it when it stops, and what it throws is lost; keep its task and await it on StopAsync"));
    }

    [Fact]
    public async Task A_BackgroundService_that_drops_a_second_loop_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Presence(Func<CancellationToken, Task> sweep) : BackgroundService
            {
                protected override Task ExecuteAsync(CancellationToken stoppingToken)
                {
                    _ = [|SweepLoopAsync(stoppingToken)|];
                    return Task.Delay(Timeout.Infinite, stoppingToken);
                }

                private async Task SweepLoopAsync(CancellationToken ct)
                {
                    using var timer = new PeriodicTimer(TimeSpan.FromSeconds(30));
                    while (await timer.WaitForNextTickAsync(ct))
                    {
                        await sweep(ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_long_running_sender_thread_a_disposable_client_drops_is_reported_once()
    {
        // websocket-client's shape: the delegate is not async but returns the loop's task, and the result is dropped.
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Client(ChannelReader<string> queue, Func<string, Task> send) : IDisposable
            {
                public void Start() => _ = [|Task.Factory.StartNew(_ => SendFromQueueAsync(), TaskCreationOptions.LongRunning, CancellationToken.None)|];

                private async Task SendFromQueueAsync()
                {
                    while (await queue.WaitToReadAsync())
                    {
                        await send(await queue.ReadAsync());
                    }
                }

                public void Dispose()
                {
                }
            }
            """);
    }

    [Fact]
    public async Task A_synchronous_Dispose_that_starts_the_close_handshake_and_drops_it_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Connection(WebSocket socket) : IDisposable
            {
                private readonly CancellationTokenSource _stopping = new();

                public void Dispose()
                {
                    _ = {|#0:socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None)|};
                    _stopping.Cancel();
                    socket.Dispose();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'socket.CloseAsync(...)' is started by a synchronous Dispose and dropped: the disposal returns before the work ends, and what it throws is lost; implement IAsyncDisposable and await it there"));
    }

    [Fact]
    public async Task A_flush_a_Dispose_of_bool_drops_with_ConfigureAwait_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Journal(Stream file) : IDisposable
            {
                public void Dispose()
                {
                    Dispose(true);
                    GC.SuppressFinalize(this);
                }

                protected virtual void Dispose(bool disposing)
                {
                    if (disposing)
                    {
                        [|file.FlushAsync()|].ConfigureAwait(false);
                    }
                }
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task A_task_awaited_inside_the_using_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Users(DbProviderFactory factory)
            {
                public async Task<object?> CountAsync(CancellationToken ct)
                {
                    await using var connection = factory.CreateConnection()!;
                    await connection.OpenAsync(ct);
                    var command = connection.CreateCommand();
                    command.CommandText = "select count(*) from users";
                    return await command.ExecuteScalarAsync(ct);
                }
            }
            """);
    }

    [Fact]
    public async Task Work_dropped_inside_a_using_it_does_not_use_or_awaited_before_the_block_ends_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Audit(Func<string, Task> log)
            {
                public async Task SaveAsync(string path, byte[] data)
                {
                    await using (var file = File.Create(path))
                    {
                        _ = log("saving " + path);
                        var write = file.WriteAsync(data, 0, data.Length);
                        await write;
                    }

                    using var copy = File.Create(path + ".bak");
                    await Task.Run(() => copy.Write(data, 0, data.Length));
                }

                public async Task FanOutAsync(IReadOnlyList<string> paths, byte[] data, TimeSpan timeout)
                {
                    // A TaskScope owns the children it starts: its disposal waits for them, also when it was made from
                    // the token of a source disposed after it.
                    using var deadline = new CancellationTokenSource(timeout);
                    await using var scope = new AsyncScopes.TaskScope(deadline.Token);
                    foreach (var path in paths)
                    {
                        _ = scope.Start(ct => File.WriteAllBytesAsync(path, data, ct));
                    }

                    await scope.JoinAsync();
                }

                public async Task OpenBothAsync(Func<DbConnection> connect, CancellationToken ct)
                {
                    // The scope is disposed before the connection, and waits for the work it was given.
                    await using var connection = connect();
                    await using var scope = new AsyncScopes.TaskScope(ct);
                    scope.Start(token => connection.OpenAsync(token));
                    await scope.JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_task_returned_from_a_using_that_it_does_not_use_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Cache(Func<string, Task<string>> load)
            {
                private readonly SemaphoreSlim _gate = new(1, 1);

                public Task<string> GetAsync(string key)
                {
                    using var timing = new Timer(_ => { });
                    return load(key);
                }
            }
            """);
    }

    [Fact]
    public async Task A_task_of_values_read_from_a_resource_before_the_using_ends_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Snapshot(Func<byte[], Task> upload)
            {
                public Task UploadAsync(string path)
                {
                    using var file = File.OpenRead(path);
                    var length = file.Length;
                    var bytes = new byte[length];
                    file.ReadExactly(bytes);
                    return length == 0 ? Task.CompletedTask : upload(bytes);
                }

                public Task<long> LengthAsync(string path)
                {
                    using var file = File.OpenRead(path);
                    var length = file.Length;
                    return Task.FromResult(length);
                }
            }
            """);
    }

    [Fact]
    public async Task StartNew_unwrapped_or_awaited_twice_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Pump(Func<Task> work)
            {
                public async Task RunAsync()
                {
                    await Task.Factory.StartNew(async () => await work(), TaskCreationOptions.LongRunning).Unwrap();
                    await await Task.Factory.StartNew(() => work());
                    var inner = await Task.Factory.StartNew(() => 42);
                    await Task.Factory.StartNew(() => Thread.Sleep(inner));
                }
            }
            """);
    }

    [Fact]
    public async Task A_loop_whose_task_is_kept_and_awaited_on_disposal_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Session(WebSocket socket) : IAsyncDisposable
            {
                private readonly CancellationTokenSource _closing = new();
                private Task _receiving = Task.CompletedTask;

                public void Start() => _receiving = ReceiveLoopAsync();

                private async Task ReceiveLoopAsync()
                {
                    var buffer = new byte[4096];
                    while (!_closing.IsCancellationRequested)
                    {
                        await socket.ReceiveAsync(buffer, _closing.Token);
                    }
                }

                public async ValueTask DisposeAsync()
                {
                    _closing.Cancel();
                    await _receiving;
                }
            }
            """);
    }

    [Fact]
    public async Task Dropped_one_shot_work_and_loops_of_types_that_own_no_lifetime_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Notifier(Func<string, Task> send) : IDisposable
            {
                public void Notify(string text) => _ = send(text);

                public void Dispose()
                {
                }
            }

            sealed class Poller(Func<Task<bool>> poll)
            {
                public void Start() => _ = PollAsync();

                private async Task PollAsync()
                {
                    while (await poll())
                    {
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_that_drops_DisposeAsync_is_left_to_ASC0012_and_a_completed_task_is_not_work()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Session : IDisposable, IAsyncDisposable
            {
                public void Dispose()
                {
                    _ = DisposeAsync();
                    _ = Task.FromResult(0);
                }

                public ValueTask DisposeAsync() => default;
            }
            """);
    }

    [Fact]
    public async Task An_async_DisposeAsync_and_a_lambda_inside_Dispose_are_not_reported_here()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Connection(WebSocket socket, Action<Func<Task>> schedule) : IDisposable, IAsyncDisposable
            {
                public void Dispose() => schedule(() => socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None));

                public async ValueTask DisposeAsync()
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    socket.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_quiet_ticking_loop_and_a_using_whose_Dispose_does_nothing_are_not_reported()
    {
        // MySqlConnector's ConnectionPool reaper (stopped by disposing its timer, throwing nothing) and its
        // CompressedPayloadHandler (a byte handler whose Dispose is empty).
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class ByteHandler(Stream stream) : IDisposable
            {
                public ValueTask<int> ReadAsync(Memory<byte> buffer) => stream.ReadAsync(buffer);

                public void Dispose()
                {
                }
            }

            sealed class Pool(Func<Task> reap, Stream stream) : IDisposable
            {
                private readonly PeriodicTimer _reaper = new(TimeSpan.FromSeconds(30));

                public void Start()
                {
                    _ = RunTimer();

                    async Task RunTimer()
                    {
                        while (await _reaper.WaitForNextTickAsync().ConfigureAwait(false))
                        {
                            try
                            {
                                await reap().ConfigureAwait(false);
                            }
                            catch
                            {
                                // reaped again at the next tick
                            }
                        }
                    }
                }

                public ValueTask<int> ReadAsync(Memory<byte> buffer)
                {
                    using var handler = new ByteHandler(stream);
                    return handler.ReadAsync(buffer);
                }

                public void Dispose() => _reaper.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_ticking_loop_whose_failure_would_end_it_silently_is_reported()
    {
        // MySqlConnector's DNS check: a failure of the clearing outside the try ends the loop, and nobody sees it.
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Pool(Func<Task<bool>> changed, Func<Task> clear) : IDisposable
            {
                private readonly PeriodicTimer _dnsCheck = new(TimeSpan.FromMinutes(1));

                public void Start()
                {
                    _ = [|RunTimer()|];

                    async Task RunTimer()
                    {
                        while (await _dnsCheck.WaitForNextTickAsync().ConfigureAwait(false))
                        {
                            var hostsChanged = false;
                            try
                            {
                                hostsChanged = await changed().ConfigureAwait(false);
                            }
                            catch (Exception)
                            {
                            }

                            if (hostsChanged)
                            {
                                await clear().ConfigureAwait(false);
                            }
                        }
                    }
                }

                public void Dispose() => _dnsCheck.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_hosted_service_that_awaits_its_loop_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Outbox(ChannelReader<string> pending, Func<string, Task> deliver) : IHostedService
            {
                private Task _loop = Task.CompletedTask;

                public Task StartAsync(CancellationToken cancellationToken)
                {
                    _loop = Task.Run(async () =>
                    {
                        while (await pending.WaitToReadAsync())
                        {
                            await deliver(await pending.ReadAsync());
                        }
                    });
                    return Task.CompletedTask;
                }

                public Task StopAsync(CancellationToken cancellationToken) => _loop.WaitAsync(cancellationToken);
            }
            """);
    }

    [Fact]
    public async Task Values_read_from_the_resource_before_the_return_do_not_go_with_the_work()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Files(Func<long, Task> log)
            {
                public Task<long> LengthAsync(string path)
                {
                    using var file = File.OpenRead(path);
                    return Task.FromResult(file.Length);
                }

                public Task LogLengthAsync(string path)
                {
                    using var file = File.OpenRead(path);
                    return log(file.Length);
                }
            }
            """);
    }

    [Fact]
    public async Task StartNew_of_an_async_lambda_awaited_with_ConfigureAwait_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Pump(Func<Task> work)
            {
                public async Task RunAsync() =>
                    await [|Task.Factory.StartNew(async () => await work(), TaskCreationOptions.LongRunning)|].ConfigureAwait(false);
            }
            """);
    }
}
