namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0002BlockingInCleanup>;
using VerifyFix = Verify<ASC0002BlockingInCleanup, ASC0002BlockingInCleanupFix>;

public sealed class ASC0002BlockingInCleanupTests
{
    private const string Usings = """
        using System;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;
        using System.Threading.Channels;
        using AsyncScopes;

        """;

    // Positive cases.

    [Fact]
    public async Task Waiting_for_the_receive_loop_in_Dispose_is_reported_with_the_call_and_the_advice()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class SocketSession : IDisposable
            {
                private readonly CancellationTokenSource _stop = new();
                private readonly Task _receiveLoop = Task.CompletedTask;

                public void Dispose()
                {
                    _stop.Cancel();
                    {|#0:_receiveLoop.Wait()|};
                    _stop.Dispose();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_receiveLoop.Wait()", "'Dispose'", "implement IAsyncDisposable and await the task in DisposeAsync"));
    }

    [Fact]
    public async Task GetAwaiter_GetResult_on_a_close_handshake_in_Dispose_bool_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class SocketConnection : IDisposable
            {
                private readonly WebSocket _socket;
                public SocketConnection(WebSocket socket) => _socket = socket;

                protected virtual void Dispose(bool disposing)
                {
                    if (disposing)
                    {
                        [|_socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).GetAwaiter().GetResult()|];
                    }
                }

                public void Dispose()
                {
                    Dispose(true);
                    GC.SuppressFinalize(this);
                }
            }
            """);
    }

    [Fact]
    public async Task Result_in_a_finalizer_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class TempUpload
            {
                private readonly Task<bool> _deleted = Task.FromResult(true);

                ~TempUpload()
                {
                    var ok = [|_deleted.Result|];
                    GC.KeepAlive(ok);
                }
            }
            """);
    }

    [Fact]
    public async Task Wait_in_DisposeAsync_is_reported_with_the_advice_to_await()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class BackgroundQueue : IAsyncDisposable
            {
                private readonly Channel<string> _items = Channel.CreateUnbounded<string>();
                private readonly Task _worker = Task.CompletedTask;

                public ValueTask DisposeAsync()
                {
                    _items.Writer.Complete();
                    {|#0:_worker.Wait()|};
                    return ValueTask.CompletedTask;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_worker.Wait()", "'DisposeAsync'", "await the task instead"));
    }

    [Fact]
    public async Task Blocking_in_an_ExitAsync_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Transaction : IAsyncContextManager<Transaction>
            {
                private Task _rollback = Task.CompletedTask;

                public ValueTask<Transaction> EnterAsync(CancellationToken cancellationToken = default) => new(this);

                public ValueTask<bool> ExitAsync(Exception? exception)
                {
                    if (exception is not null)
                    {
                        [|_rollback.GetAwaiter().GetResult()|];
                    }

                    return new ValueTask<bool>(false);
                }
            }
            """);
    }

    [Fact]
    public async Task Blocking_in_an_exit_given_to_AsyncContext_Create_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            static class Sessions
            {
                public static IAsyncContextManager<WebSocket> Open(Func<Task<WebSocket>> connect) =>
                    AsyncContext.Create(
                        async ct => await connect(),
                        (WebSocket socket, Exception? error) =>
                        {
                            [|socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, default).Wait()|];
                            return new ValueTask<bool>(false);
                        });
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_that_blocks_on_its_own_DisposeAsync_is_reported_with_advice_for_a_type_that_has_one()
    {
        // Polly's ResiliencePipelineRegistry shape: both interfaces, the synchronous one waiting for the other.
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class Registry(IAsyncDisposable[] pipelines) : IDisposable, IAsyncDisposable
            {
                public void Dispose() => {|#0:DisposeAsync().AsTask().GetAwaiter().GetResult()|};

                public async ValueTask DisposeAsync()
                {
                    foreach (var pipeline in pipelines)
                    {
                        await pipeline.DisposeAsync();
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "DisposeAsync().AsTask().GetAwaiter().GetResult()",
                "'Dispose'",
                "the type already has DisposeAsync: let Dispose release without waiting what it can, and leave the asynchronous work to DisposeAsync"));
    }

    [Fact]
    public async Task A_close_handshake_waited_for_in_a_websocket_wrappers_Dispose_is_reported()
    {
        // Ninja.WebSockets' shape: the close frame is sent, and the thread blocks until it is.
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class WebSocketSession(WebSocket socket) : IDisposable
            {
                public void Dispose()
                {
                    if (socket.State == WebSocketState.Open)
                    {
                        [|socket.CloseOutputAsync(WebSocketCloseStatus.EndpointUnavailable, "Service is Disposed", CancellationToken.None).Wait()|];
                    }

                    socket.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task Task_WaitAll_in_Dispose_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Fanout : IDisposable
            {
                private readonly Task[] _senders = [];
                public void Dispose() => [|Task.WaitAll(_senders)|];
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task Awaiting_in_DisposeAsync_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class BackgroundQueue : IAsyncDisposable
            {
                private readonly Channel<string> _items = Channel.CreateUnbounded<string>();
                private readonly Task _worker = Task.CompletedTask;

                public async ValueTask DisposeAsync()
                {
                    _items.Writer.Complete();
                    await _worker;
                }
            }
            """);
    }

    [Fact]
    public async Task Blocking_outside_cleanup_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class LegacyClient
            {
                public string Fetch(Func<Task<string>> fetch) => fetch().GetAwaiter().GetResult();
                public void Flush(Task pending) => pending.Wait();
            }
            """);
    }

    [Fact]
    public async Task Result_after_a_completion_check_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class CachedSnapshot : IDisposable
            {
                private readonly Task<IDisposable> _snapshot = Task.FromResult<IDisposable>(new CancellationTokenSource());

                public void Dispose()
                {
                    if (_snapshot.IsCompletedSuccessfully)
                    {
                        _snapshot.Result.Dispose();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task GetResult_after_a_guard_that_throws_when_not_completed_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class SyncExit : IDisposable
            {
                private readonly IAsyncContextManager<int> _manager = AsyncContext.Value(1);

                public void Dispose()
                {
                    var pending = _manager.ExitAsync(null);
                    if (!pending.IsCompleted)
                    {
                        throw new InvalidOperationException("The exit yielded.");
                    }

                    pending.GetAwaiter().GetResult();
                }
            }
            """);
    }

    [Fact]
    public async Task Blocking_in_a_lambda_that_Dispose_only_schedules_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Uploader : IDisposable
            {
                private readonly Task _upload = Task.CompletedTask;

                public void Dispose()
                {
                    _ = _upload.ContinueWith(t => t.Wait(), TaskScheduler.Default);
                }
            }
            """);
    }

    [Fact]
    public async Task A_semaphore_Wait_in_Dispose_is_not_a_task_and_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Gate : IDisposable
            {
                private readonly SemaphoreSlim _gate = new(1, 1);

                public void Dispose()
                {
                    _gate.Wait();
                    _gate.Dispose();
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_awaits_the_task_in_an_async_DisposeAsync()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class BackgroundQueue : IAsyncDisposable
            {
                private readonly Task _worker = Task.CompletedTask;
                private readonly Task<int> _count = Task.FromResult(0);

                public async ValueTask DisposeAsync()
                {
                    [|_worker.Wait()|];
                    Console.WriteLine([|_count.Result|] + 1);
                    await Task.Yield();
                }
            }
            """,
            Usings + """
            sealed class BackgroundQueue : IAsyncDisposable
            {
                private readonly Task _worker = Task.CompletedTask;
                private readonly Task<int> _count = Task.FromResult(0);

                public async ValueTask DisposeAsync()
                {
                    await _worker;
                    Console.WriteLine(await _count + 1);
                    await Task.Yield();
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_follows_a_file_that_uses_ConfigureAwait()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class Pump : IAsyncDisposable
            {
                private readonly Task _pump = Task.CompletedTask;

                public async ValueTask DisposeAsync()
                {
                    await Task.Delay(1).ConfigureAwait(false);
                    [|_pump.GetAwaiter().GetResult()|];
                }
            }
            """,
            Usings + """
            sealed class Pump : IAsyncDisposable
            {
                private readonly Task _pump = Task.CompletedTask;

                public async ValueTask DisposeAsync()
                {
                    await Task.Delay(1).ConfigureAwait(false);
                    await _pump.ConfigureAwait(false);
                }
            }
            """);
    }

    [Fact]
    public async Task A_synchronous_Dispose_gets_no_fix()
    {
        await VerifyFix.NoFixAsync(Usings + """
            sealed class SocketSession : IDisposable
            {
                private readonly Task _loop = Task.CompletedTask;
                public void Dispose() => [|_loop.Wait()|];
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_that_runs_code_written_both_ways_synchronously_is_not_reported()
    {
        // MySqlConnector's readers, transactions and connections: Dispose runs the shared implementation with
        // IOBehavior.Synchronous, whose task is complete when it returns.
        await VerifyCS.NoDiagnosticsAsync("""
            using System;
            using System.IO;
            using System.Threading;
            using System.Threading.Tasks;

            enum IOBehavior { Synchronous, Asynchronous }

            sealed class Transaction(Stream log) : IDisposable, IAsyncDisposable
            {
                public void Dispose() => DisposeAsync(IOBehavior.Synchronous, CancellationToken.None).GetAwaiter().GetResult();

                public ValueTask DisposeAsync() => DisposeAsync(IOBehavior.Asynchronous, CancellationToken.None);

                private async ValueTask DisposeAsync(IOBehavior ioBehavior, CancellationToken ct)
                {
                    if (ioBehavior == IOBehavior.Asynchronous)
                        await log.FlushAsync(ct).ConfigureAwait(false);
                    else
                        log.Flush();
                }
            }
            """);
    }

    [Fact]
    public async Task A_Dispose_that_refuses_the_asynchronous_mode_before_it_blocks_is_not_reported()
    {
        // Npgsql's PgReader: Dispose throws when the reader runs asynchronously, so the task it then waits for was
        // made synchronously and is complete.
        await VerifyCS.NoDiagnosticsAsync("""
            using System;
            using System.IO;
            using System.Threading.Tasks;

            sealed class ColumnReader(Stream column, bool async) : IDisposable, IAsyncDisposable
            {
                private readonly bool _async = async;

                public void Dispose()
                {
                    if (_async)
                        throw new InvalidOperationException("Use DisposeAsync: this reader runs asynchronously.");
                    DisposeAsync().GetAwaiter().GetResult();
                }

                public ValueTask DisposeAsync()
                {
                    if (_async)
                        return new ValueTask(column.FlushAsync());
                    column.Flush();
                    return default;
                }
            }

            static class ThrowHelper
            {
                public static void ThrowInvalidOperationException(string message) => throw new InvalidOperationException(message);
            }

            sealed class ScopeReader(Stream column, bool async) : IDisposable, IAsyncDisposable
            {
                private readonly bool _async = async;

                public void Dispose()
                {
                    if (_async)
                        ThrowHelper.ThrowInvalidOperationException("Cannot synchronously dispose async scopes, call DisposeAsync instead.");
                    DisposeAsync().GetAwaiter().GetResult();
                }

                public ValueTask DisposeAsync() => _async ? new ValueTask(column.FlushAsync()) : default;
            }
            """);
    }

    [Fact]
    public async Task Blocking_in_a_method_that_Dispose_calls_is_reported_where_it_blocks()
    {
        await VerifyCS.DiagnosticsAsync(
            """
            using System;
            using System.Threading;
            using System.Threading.Tasks;

            sealed class Poller : IDisposable
            {
                private readonly CancellationTokenSource _stop = new();
                private Task _loop = Task.CompletedTask;

                public void Start(Func<CancellationToken, Task> poll) => _loop = poll(_stop.Token);

                public void Stop()
                {
                    _stop.Cancel();
                    Drain();
                }

                private void Drain() => {|#0:_loop.Wait()|};

                public void Dispose()
                {
                    Stop();
                    _stop.Dispose();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "_loop.Wait()", "'Drain', which 'Dispose' calls", "implement IAsyncDisposable and await the task in DisposeAsync"));
    }

    [Fact]
    public async Task A_method_that_Dispose_calls_and_that_does_not_block_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync("""
            using System;
            using System.Threading;
            using System.Threading.Tasks;

            sealed class Poller : IDisposable
            {
                private readonly CancellationTokenSource _stop = new();
                private Task _loop = Task.CompletedTask;

                public void Stop() => _stop.Cancel();

                public string Describe() => _loop.IsCompleted ? _loop.Status.ToString() : "running";

                public void Dispose()
                {
                    Stop();
                    _ = Describe();
                    _stop.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_block_reached_from_several_cleanups_is_reported_once()
    {
        await VerifyCS.DiagnosticsAsync("""
            using System;
            using System.Threading.Tasks;

            class Worker : IDisposable
            {
                private Task _loop = Task.CompletedTask;

                private void Stop() => [|_loop.Wait()|];

                public void Dispose()
                {
                    Stop();
                    Dispose(true);
                    GC.SuppressFinalize(this);
                }

                protected virtual void Dispose(bool disposing) => Stop();

                ~Worker() => Stop();
            }
            """);
    }
}
