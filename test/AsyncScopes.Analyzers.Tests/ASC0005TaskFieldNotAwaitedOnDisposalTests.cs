namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0005TaskFieldNotAwaitedOnDisposal>;

public sealed class ASC0005TaskFieldNotAwaitedOnDisposalTests
{
    private const string Usings = """
        using System;
        using System.Collections.Concurrent;
        using System.Collections.Generic;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Channels;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task A_receive_loop_started_in_the_constructor_and_only_cancelled_on_disposal_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class SocketSession : IDisposable
            {
                private readonly CancellationTokenSource _stop = new();
                private readonly Task {|#0:_receiveLoop|};

                public SocketSession(WebSocket socket) => _receiveLoop = ReceiveAsync(socket, _stop.Token);

                private static async Task ReceiveAsync(WebSocket socket, CancellationToken ct)
                {
                    var buffer = new byte[4096];
                    while (!ct.IsCancellationRequested) { await socket.ReceiveAsync(buffer, ct); }
                }

                public void Dispose() => _stop.Cancel();
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("SocketSession", "_receiveLoop"));
    }

    [Fact]
    public async Task A_worker_started_with_Task_Run_in_a_field_initializer_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class BackgroundQueue : IAsyncDisposable
            {
                private readonly Channel<Func<Task>> _jobs = Channel.CreateUnbounded<Func<Task>>();
                private readonly Task [|_worker|];

                public BackgroundQueue() => _worker = Task.Run(RunAsync);

                private async Task RunAsync() { await foreach (var job in _jobs.Reader.ReadAllAsync()) { await job(); } }

                public ValueTask DisposeAsync()
                {
                    _jobs.Writer.Complete();
                    return ValueTask.CompletedTask;
                }
            }
            """);
    }

    [Fact]
    public async Task A_list_of_per_client_send_loops_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Broadcaster : IDisposable
            {
                private readonly List<Task> [|_senders|] = new();
                private readonly CancellationTokenSource _stop = new();

                public void Add(WebSocket client) => _senders.Add(SendAsync(client, _stop.Token));

                private static Task SendAsync(WebSocket client, CancellationToken ct) => client.SendAsync(Array.Empty<byte>(), WebSocketMessageType.Text, true, ct);

                public void Dispose()
                {
                    _stop.Cancel();
                    _stop.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_dictionary_of_running_uploads_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class UploadTracker : IAsyncDisposable
            {
                private readonly ConcurrentDictionary<Guid, Task> [|_uploads|] = new();

                public void Start(Guid id, Func<Task> upload) => _uploads.TryAdd(id, upload());

                public ValueTask DisposeAsync() => default;
            }
            """);
    }

    [Fact]
    public async Task A_task_array_filled_by_index_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class PartitionedConsumer : IDisposable
            {
                private readonly Task[] [|_partitions|] = new Task[4];
                private readonly CancellationTokenSource _stop = new();

                public void Start()
                {
                    for (var i = 0; i < _partitions.Length; i++)
                    {
                        _partitions[i] = Task.Delay(Timeout.Infinite, _stop.Token);
                    }
                }

                public void Dispose() => _stop.Cancel();
            }
            """);
    }

    [Fact]
    public async Task A_heartbeat_task_of_a_type_whose_disposal_is_inherited_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Connection : IDisposable
            {
                public virtual void Dispose() { }
            }

            sealed class HeartbeatConnection : Connection
            {
                private Task? [|_heartbeat|];
                public void Start(WebSocket socket) => _heartbeat = socket.SendAsync(Array.Empty<byte>(), WebSocketMessageType.Binary, true, default);
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task A_loop_awaited_in_DisposeAsync_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class SocketSession : IAsyncDisposable
            {
                private readonly CancellationTokenSource _stop = new();
                private readonly Task _receiveLoop;

                public SocketSession(Func<CancellationToken, Task> receive) => _receiveLoop = receive(_stop.Token);

                public async ValueTask DisposeAsync()
                {
                    await _stop.CancelAsync();
                    try { await _receiveLoop; } catch (OperationCanceledException) { }
                }
            }
            """);
    }

    [Fact]
    public async Task Senders_awaited_by_a_helper_that_DisposeAsync_calls_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Broadcaster : IAsyncDisposable
            {
                private readonly List<Task> _senders = new();

                public void Add(Func<Task> send) => _senders.Add(send());

                private Task DrainAsync() => Task.WhenAll(_senders);

                public async ValueTask DisposeAsync() => await DrainAsync();
            }
            """);
    }

    [Fact]
    public async Task A_task_awaited_in_a_hosted_service_StopAsync_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class OutboxPump : IDisposable
            {
                private readonly CancellationTokenSource _stop = new();
                private Task? _pump;

                public Task StartAsync(CancellationToken ct) { _pump = Task.Run(() => Task.Delay(Timeout.Infinite, _stop.Token)); return Task.CompletedTask; }

                public async Task StopAsync(CancellationToken ct)
                {
                    _stop.Cancel();
                    if (_pump is not null) { await _pump.WaitAsync(ct); }
                }

                public void Dispose() => _stop.Dispose();
            }
            """);
    }

    [Fact]
    public async Task A_task_handed_in_by_the_caller_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Reply : IDisposable
            {
                private readonly Task<string> _answer;
                public Reply(Task<string> answer) => _answer = answer;
                public Task<string> Answer => _answer;
                public void Dispose() { }
            }
            """);
    }

    [Fact]
    public async Task Completed_tasks_kept_as_results_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class CachedQuote : IDisposable
            {
                private Task<decimal> _last = Task.FromResult(0m);
                private Task _idle = Task.CompletedTask;
                public void Remember(decimal quote) { _last = Task.FromResult(quote); _idle = Task.CompletedTask; }
                public Task<decimal> Last => _last;
                public Task Idle => _idle;
                public void Dispose() { }
            }
            """);
    }

    [Fact]
    public async Task Task_fields_of_a_type_that_is_not_disposable_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Warmup
            {
                private readonly Task _warming = Task.Run(() => { });
                public Task Ready => _warming;
            }
            """);
    }
}
