namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0012DisposeAsyncNotAwaited>;
using VerifyFix = Verify<ASC0012DisposeAsyncNotAwaited, ASC0012DisposeAsyncNotAwaitedFix>;

public sealed class ASC0012DisposeAsyncNotAwaitedTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Data.Common;
        using System.IO;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task A_discarded_DisposeAsync_of_a_connection_in_an_async_method_is_reported_with_the_advice()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Repository(Func<DbConnection> connect)
            {
                public async Task<int> CountAsync(CancellationToken ct)
                {
                    var connection = connect();
                    await connection.OpenAsync(ct);
                    _ = {|#0:connection.DisposeAsync()|};
                    return 0;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "connection.DisposeAsync()",
                "the object is still being disposed when the code goes on, and what the disposal throws is lost; await it"));
    }

    [Fact]
    public async Task A_DisposeAsync_statement_in_an_async_handler_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Export
            {
                public async Task WriteAsync(string path, byte[] data)
                {
                    var file = new FileStream(path, FileMode.Create);
                    await file.WriteAsync(data);
                    [|file.DisposeAsync()|];
                }
            }
            """);
    }

    [Fact]
    public async Task A_synchronous_Dispose_that_fires_its_own_DisposeAsync_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Session(WebSocket socket) : IDisposable, IAsyncDisposable
            {
                public void Dispose() => _ = [|DisposeAsync()|];

                public async ValueTask DisposeAsync()
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    socket.Dispose();
                }
            }
            """);
    }

    [Fact]
    public async Task A_synchronous_Dispose_that_fires_a_fields_DisposeAsync_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Client(DbConnection connection) : IDisposable
            {
                public void Dispose()
                {
                    _ = [|connection.DisposeAsync()|];
                }
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_as_the_body_of_an_Action_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Hub
            {
                private readonly List<DbConnection> _connections = new();

                public void CloseAll() => _connections.ForEach(connection => [|connection.DisposeAsync()|]);
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_turned_into_a_task_that_goes_nowhere_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Upload
            {
                public async Task SendAsync(FileStream body, Func<Stream, Task> send)
                {
                    await send(body);
                    [|body.DisposeAsync()|].AsTask();
                }
            }
            """);
    }

    [Fact]
    public async Task A_discarded_DisposeAsync_in_a_finally_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Import(Func<DbConnection> connect)
            {
                public async Task RunAsync(CancellationToken ct)
                {
                    var connection = connect();
                    try
                    {
                        await connection.OpenAsync(ct);
                    }
                    finally
                    {
                        _ = [|connection.DisposeAsync()|];
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_discarded_DisposeAsync_in_a_timer_callback_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Recycler(DbConnection idle)
            {
                public Timer Start() => new Timer(_ => _ = [|idle.DisposeAsync()|], null, TimeSpan.FromMinutes(5), Timeout.InfiniteTimeSpan);
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task An_awaited_DisposeAsync_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Repository
            {
                public async Task CloseAsync(DbConnection connection) => await connection.DisposeAsync();
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_handed_to_the_caller_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Owner(DbConnection connection) : IAsyncDisposable
            {
                public ValueTask DisposeAsync() => connection.DisposeAsync();
            }
            """);
    }

    [Fact]
    public async Task A_DisposeAsync_kept_and_awaited_later_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Shutdown
            {
                public async Task StopAsync(DbConnection connection, Func<Task> drain)
                {
                    var closing = connection.DisposeAsync();
                    await drain();
                    await closing;
                }
            }
            """);
    }

    [Fact]
    public async Task DisposeAsync_tasks_collected_and_awaited_together_are_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Pool
            {
                public async Task CloseAllAsync(IEnumerable<DbConnection> connections)
                {
                    var closing = new List<Task>();
                    foreach (var connection in connections)
                    {
                        closing.Add(connection.DisposeAsync().AsTask());
                    }

                    await Task.WhenAll(closing);
                }
            }
            """);
    }

    [Fact]
    public async Task A_dropped_DisposeAsync_of_a_memory_stream_which_completes_at_once_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Buffer
            {
                public void Reset(MemoryStream buffer) => _ = buffer.DisposeAsync();
            }
            """);
    }

    [Fact]
    public async Task A_dropped_task_inside_an_async_DisposeAsync_is_left_to_ASC0003()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Owner(DbConnection connection) : IAsyncDisposable
            {
                public async ValueTask DisposeAsync()
                {
                    await Task.Yield();
                    _ = connection.DisposeAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task An_await_using_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Export
            {
                public async Task WriteAsync(string path, byte[] data)
                {
                    await using var file = new FileStream(path, FileMode.Create);
                    await file.WriteAsync(data);
                }
            }
            """);
    }

    [Fact]
    public async Task A_method_named_DisposeAsync_that_takes_arguments_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Leases
            {
                public ValueTask DisposeAsync(bool force) => ValueTask.CompletedTask;

                public void Drop() => _ = DisposeAsync(force: true);
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_awaits_a_discarded_DisposeAsync()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Repository(Func<DbConnection> connect)
            {
                public async Task RunAsync(CancellationToken ct)
                {
                    var connection = connect();
                    await connection.OpenAsync(ct);
                    _ = [|connection.DisposeAsync()|];
                }
            }
            """,
            Usings + """
            class Repository(Func<DbConnection> connect)
            {
                public async Task RunAsync(CancellationToken ct)
                {
                    var connection = connect();
                    await connection.OpenAsync(ct);
                    await connection.DisposeAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_awaits_a_DisposeAsync_statement()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Export
            {
                public async Task WriteAsync(string path, byte[] data)
                {
                    var file = new FileStream(path, FileMode.Create);
                    await file.WriteAsync(data);
                    [|file.DisposeAsync()|]; // closed
                }
            }
            """,
            Usings + """
            class Export
            {
                public async Task WriteAsync(string path, byte[] data)
                {
                    var file = new FileStream(path, FileMode.Create);
                    await file.WriteAsync(data);
                    await file.DisposeAsync(); // closed
                }
            }
            """);
    }
}
