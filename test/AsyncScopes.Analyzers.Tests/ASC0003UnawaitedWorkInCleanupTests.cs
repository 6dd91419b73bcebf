namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0003UnawaitedWorkInCleanup>;
using VerifyFix = Verify<ASC0003UnawaitedWorkInCleanup, ASC0003UnawaitedWorkInCleanupFix>;

public sealed class ASC0003UnawaitedWorkInCleanupTests
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
    public async Task A_close_handshake_started_and_dropped_in_DisposeAsync_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class ChatConnection(WebSocket socket) : IAsyncDisposable
            {
                public async ValueTask DisposeAsync()
                {
                    {|#0:socket.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, "shutting down", CancellationToken.None)|};
                    await Task.Yield();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "socket.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, \"shutting down\", CancellationToken.None)", "DisposeAsync", "its task is dropped"));
    }

    [Fact]
    public async Task A_drain_discarded_with_an_underscore_in_DisposeAsync_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class JobQueue : IAsyncDisposable
            {
                private readonly Channel<string> _jobs = Channel.CreateUnbounded<string>();

                private async Task DrainAsync() { while (await _jobs.Reader.WaitToReadAsync()) { _jobs.Reader.TryRead(out _); } }

                public async ValueTask DisposeAsync()
                {
                    _jobs.Writer.Complete();
                    [|_ = DrainAsync();|]
                    await Task.Yield();
                }
            }
            """);
    }

    [Fact]
    public async Task A_Task_Run_kept_in_a_local_that_is_never_awaited_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Cache : IAsyncDisposable
            {
                public async ValueTask DisposeAsync()
                {
                    var [|flush = Task.Run(() => Console.WriteLine("flushed"))|];
                    await Task.Yield();
                }
            }
            """);
    }

    [Fact]
    public async Task An_async_void_call_in_DisposeAsync_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Notifier : IAsyncDisposable
            {
                private async void NotifyClosed() => await Task.Delay(10);

                public ValueTask DisposeAsync()
                {
                    [|NotifyClosed()|];
                    return default;
                }
            }
            """);
    }

    [Fact]
    public async Task A_dropped_task_in_a_DisposeAsync_that_returns_a_completed_task_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Heartbeat : IAsyncDisposable
            {
                private readonly CancellationTokenSource _stop = new();

                public ValueTask DisposeAsync()
                {
                    [|_ = _stop.CancelAsync();|]
                    return ValueTask.CompletedTask;
                }
            }
            """);
    }

    [Fact]
    public async Task A_dropped_task_in_an_ExitAsync_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class AuditScope : IAsyncContextManager<AuditScope>
            {
                private static Task WriteAsync(string line) => Task.Delay(1);

                public ValueTask<AuditScope> EnterAsync(CancellationToken cancellationToken = default) => new(this);

                public async ValueTask<bool> ExitAsync(Exception? exception)
                {
                    [|WriteAsync(exception is null ? "ok" : "failed")|];
                    await Task.Yield();
                    return false;
                }
            }
            """);
    }

    [Fact]
    public async Task A_dropped_task_in_an_exit_deferred_on_a_stack_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            static class Uploads
            {
                public static void Register(AsyncExitStack stack, Func<Task> deleteTemp)
                {
                    stack.Defer(async () =>
                    {
                        [|deleteTemp()|];
                        await Task.Yield();
                    });
                }
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task Awaited_work_in_DisposeAsync_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class ChatConnection(WebSocket socket) : IAsyncDisposable
            {
                public async ValueTask DisposeAsync()
                {
                    await socket.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, "shutting down", CancellationToken.None);
                    var drain = Task.Delay(1);
                    await drain;
                }
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_that_returns_the_task_it_starts_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Pool : IAsyncDisposable
            {
                private readonly TaskCompletionSource _drained = new();
                private async Task DrainAsync() { await Task.Yield(); _drained.TrySetResult(); }

                public ValueTask DisposeAsync()
                {
                    _ = DrainAsync();
                    return new ValueTask(_drained.Task);
                }
            }
            """);
    }

    [Fact]
    public async Task Tasks_combined_with_WhenAll_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Fanout(WebSocket[] sockets) : IAsyncDisposable
            {
                public async ValueTask DisposeAsync()
                {
                    var closing = Task.WhenAll(Array.ConvertAll(sockets, s => s.CloseAsync(WebSocketCloseStatus.NormalClosure, null, default)));
                    await closing;
                }
            }
            """);
    }

    [Fact]
    public async Task Dropped_tasks_outside_cleanup_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class Poster
            {
                private static Task SendAsync() => Task.CompletedTask;
                public void Post() => _ = SendAsync();
                public async Task RunAsync() { SendAsync(); await Task.Yield(); }
            }
            """);
    }

    [Fact]
    public async Task Synchronous_calls_in_DisposeAsync_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Heartbeat : IAsyncDisposable
            {
                private readonly CancellationTokenSource _stop = new();
                private readonly Channel<int> _beats = Channel.CreateUnbounded<int>();

                public async ValueTask DisposeAsync()
                {
                    _stop.Cancel();
                    _beats.Writer.TryComplete();
                    await Task.Yield();
                }
            }
            """);
    }

    [Fact]
    public async Task A_task_started_in_a_lambda_that_cleanup_only_registers_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Session : IAsyncDisposable
            {
                private readonly CancellationTokenSource _stop = new();

                public async ValueTask DisposeAsync()
                {
                    _stop.Token.Register(() => Task.Delay(1));
                    await Task.Yield();
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_awaits_a_dropped_and_a_discarded_task()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class ChatConnection(WebSocket socket) : IAsyncDisposable
            {
                private readonly CancellationTokenSource _stop = new();

                public async ValueTask DisposeAsync()
                {
                    [|_ = _stop.CancelAsync();|]
                    [|socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None)|];
                }
            }
            """,
            Usings + """
            sealed class ChatConnection(WebSocket socket) : IAsyncDisposable
            {
                private readonly CancellationTokenSource _stop = new();

                public async ValueTask DisposeAsync()
                {
                    await _stop.CancelAsync();
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_follows_a_file_that_uses_ConfigureAwait()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class Flusher : IAsyncDisposable
            {
                private static Task FlushAsync() => Task.CompletedTask;

                public async ValueTask DisposeAsync()
                {
                    await Task.Delay(1).ConfigureAwait(false);
                    [|FlushAsync()|];
                }
            }
            """,
            Usings + """
            sealed class Flusher : IAsyncDisposable
            {
                private static Task FlushAsync() => Task.CompletedTask;

                public async ValueTask DisposeAsync()
                {
                    await Task.Delay(1).ConfigureAwait(false);
                    await FlushAsync().ConfigureAwait(false);
                }
            }
            """);
    }
}
