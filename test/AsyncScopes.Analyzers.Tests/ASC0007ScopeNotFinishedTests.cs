namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0007ScopeNotFinished>;
using VerifyFix = Verify<ASC0007ScopeNotFinished, ASC0007ScopeNotFinishedFix>;

public sealed class ASC0007ScopeNotFinishedTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Data.Common;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;
        using AsyncScopes;

        static class Loops
        {
            public static Task ReceiveAsync(WebSocket socket, CancellationToken ct) => Task.CompletedTask;
            public static Task SendAsync(WebSocket socket, CancellationToken ct) => Task.CompletedTask;
            public static IAsyncContextManager<DbTransaction> Transaction(DbConnection connection) =>
                AsyncContext.Create(ct => connection.BeginTransactionAsync(ct), (DbTransaction tx, Exception? e) => new ValueTask<bool>(false));
        }

        """;

    // Positive cases.

    [Fact]
    public async Task A_connection_scope_that_never_joins_is_reported_with_its_name()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class ChatHandler
            {
                public async Task HandleAsync(WebSocket socket, CancellationToken ct)
                {
                    await using var {|#0:connection|} = new TaskScope(ct);
                    connection.Start(token => Loops.ReceiveAsync(socket, token));
                    connection.Start(token => Loops.SendAsync(socket, token));
                    await Task.Delay(1, ct);
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'connection' starts children but reaches the end of its block without 'await connection.JoinAsync()' on some path: disposal cancels them and nobody sees their failures"));
    }

    [Fact]
    public async Task An_early_return_after_starting_children_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class ChatHandler
            {
                public async Task HandleAsync(WebSocket socket, bool readOnly, CancellationToken ct)
                {
                    await using var [|scope|] = new TaskScope(ct);
                    scope.Start(token => Loops.ReceiveAsync(socket, token));
                    if (readOnly)
                    {
                        return;
                    }

                    scope.Start(token => Loops.SendAsync(socket, token));
                    await scope.JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_join_on_one_branch_only_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Crawler
            {
                public async Task CrawlAsync(IEnumerable<Uri> pages, bool wait, Func<Uri, CancellationToken, Task> fetch)
                {
                    await using (var [|scope|] = new TaskScope())
                    {
                        foreach (var page in pages)
                        {
                            scope.Start(ct => fetch(page, ct));
                        }

                        if (wait)
                        {
                            await scope.JoinAsync();
                        }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_break_out_of_the_consumer_loop_before_the_join_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Consumer
            {
                public async Task ConsumeAsync(Queue<string> jobs, Func<string, CancellationToken, Task> handle)
                {
                    await using var [|workers|] = new TaskScope();
                    while (jobs.Count > 0)
                    {
                        var job = jobs.Dequeue();
                        if (job == "stop")
                        {
                            return;
                        }

                        workers.Start(ct => handle(job, ct));
                    }

                    await workers.JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_stack_that_enters_a_transaction_and_never_completes_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class MessageRepository(DbConnection connection)
            {
                public async Task SaveAsync(string text, CancellationToken ct)
                {
                    await using var {|#0:stack|} = new AsyncExitStack();
                    var transaction = await stack.EnterAsync(Loops.Transaction(connection), ct);
                    await using var command = connection.CreateCommand();
                    command.Transaction = transaction;
                    command.CommandText = "INSERT INTO messages (text) VALUES ($text)";
                    await command.ExecuteNonQueryAsync(ct);
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'stack' enters context managers but reaches the end of its block without 'stack.Complete()' on some path: every exit sees a ScopeAbandonedException, as if the block had failed"));
    }

    [Fact]
    public async Task A_stack_with_an_outcome_aware_exit_in_a_using_statement_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Upload
            {
                public async Task StoreAsync(Func<Exception?, Task> onOutcome)
                {
                    await using (var [|stack|] = new AsyncExitStack())
                    {
                        stack.PushExit(async e => { await onOutcome(e); return false; });
                        await Task.Delay(1);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_stack_completed_on_one_branch_only_is_reported()
    {
        // The early return for an empty batch commits nothing: the transaction the stack entered rolls back there, as
        // the block meant, but the stack's exits are told the block failed.
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class MessageRepository(DbConnection connection)
            {
                public async Task<int> SaveAsync(IReadOnlyList<string> texts, CancellationToken ct)
                {
                    await using var {|#0:stack|} = new AsyncExitStack();
                    var transaction = await stack.EnterAsync(Loops.Transaction(connection), ct);
                    if (texts.Count == 0)
                    {
                        return 0;
                    }

                    foreach (var text in texts)
                    {
                        await using var command = connection.CreateCommand();
                        command.Transaction = transaction;
                        command.CommandText = "INSERT INTO messages (text) VALUES ($text)";
                        await command.ExecuteNonQueryAsync(ct);
                    }

                    stack.Complete();
                    return texts.Count;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'stack' enters context managers but reaches the end of its block without 'stack.Complete()' on some path: every exit sees a ScopeAbandonedException, as if the block had failed"));
    }

    [Fact]
    public async Task A_return_from_a_catch_after_starting_children_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Crawler
            {
                public async Task<int> CrawlAsync(IReadOnlyList<Uri> pages, Func<Uri, CancellationToken, Task> fetch, Func<Task> warmUp)
                {
                    await using var {|#0:scope|} = new TaskScope();
                    foreach (var page in pages)
                    {
                        scope.Start(ct => fetch(page, ct));
                    }

                    try
                    {
                        await warmUp();
                    }
                    catch (TimeoutException)
                    {
                        return 0;
                    }

                    await scope.JoinAsync();
                    return pages.Count;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments(
                "'scope' starts children but reaches the end of its block without 'await scope.JoinAsync()' on some path: disposal cancels them and nobody sees their failures"));
    }

    // Negative cases.

    [Fact]
    public async Task A_scope_that_joins_at_the_end_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ChatHandler
            {
                public async Task HandleAsync(WebSocket socket, CancellationToken ct)
                {
                    await using var connection = new TaskScope(ct);
                    connection.Start(token => Loops.ReceiveAsync(socket, token));
                    connection.Start(token => Loops.SendAsync(socket, token));
                    await connection.JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task An_early_return_before_any_child_started_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ChatHandler
            {
                public async Task HandleAsync(WebSocket socket, CancellationToken ct)
                {
                    await using var scope = new TaskScope(ct);
                    if (socket.State != WebSocketState.Open)
                    {
                        return;
                    }

                    scope.Start(token => Loops.ReceiveAsync(socket, token));
                    await scope.JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_path_that_ends_by_throwing_abandons_on_purpose_and_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class Importer
            {
                public async Task ImportAsync(string[] rows, Func<string, CancellationToken, Task> import)
                {
                    await using var scope = new TaskScope();
                    foreach (var row in rows)
                    {
                        if (row.Length == 0)
                        {
                            throw new FormatException("An empty row.");
                        }

                        scope.Start(ct => import(row, ct));
                    }

                    try
                    {
                        await scope.JoinAsync();
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_scope_handed_to_a_method_that_joins_it_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ChatHandler
            {
                private static Task RunUntilClosedAsync(TaskScope scope) => scope.JoinAsync();

                public async Task HandleAsync(WebSocket socket, CancellationToken ct)
                {
                    await using var scope = new TaskScope(ct);
                    scope.Start(token => Loops.ReceiveAsync(socket, token));
                    await RunUntilClosedAsync(scope);
                }
            }
            """);
    }

    [Fact]
    public async Task A_stack_completed_on_every_branch_and_a_scope_joined_after_a_goto_retry_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class MessageRepository(DbConnection connection)
            {
                public async Task<bool> SaveAsync(string text, bool dryRun, CancellationToken ct)
                {
                    await using var stack = new AsyncExitStack();
                    await stack.EnterAsync(Loops.Transaction(connection), ct);
                    if (dryRun)
                    {
                        stack.Complete();
                        return false;
                    }

                    await using var command = connection.CreateCommand();
                    command.CommandText = text;
                    await command.ExecuteNonQueryAsync(ct);
                    stack.Complete();
                    return true;
                }

                public async Task PingAllAsync(IReadOnlyList<Func<CancellationToken, Task>> pings)
                {
                    var round = 0;
                    await using var scope = new TaskScope();
                again:
                    foreach (var ping in pings)
                    {
                        scope.Start(ping);
                    }

                    if (++round < 3)
                    {
                        goto again;
                    }

                    await scope.JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_stack_that_completes_and_a_stack_that_pops_all_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class MessageRepository(DbConnection connection)
            {
                private AsyncExitStack? _kept;

                public async Task SaveAsync(CancellationToken ct)
                {
                    await using var stack = new AsyncExitStack();
                    await stack.EnterAsync(Loops.Transaction(connection), ct);
                    stack.Complete();
                }

                public async Task OpenAsync(CancellationToken ct)
                {
                    await using var stack = new AsyncExitStack();
                    await stack.EnterAsync(Loops.Transaction(connection), ct);
                    _kept = stack.PopAll();
                }
            }
            """);
    }

    [Fact]
    public async Task Scopes_that_start_or_enter_nothing_and_the_delegate_forms_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class Jobs
            {
                public async Task RunAsync(Func<CancellationToken, Task> job, IAsyncDisposable resource)
                {
                    await using var idle = new TaskScope();
                    await using var stack = new AsyncExitStack();
                    stack.Push(resource);
                    await TaskScope.RunAsync(scope => { scope.Start(job); return Task.CompletedTask; });
                    await AsyncExitStack.RunAsync(async (s, ct) => await s.EnterAsync(AsyncContext.Value(1), ct));
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_ends_the_block_with_a_join()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class ChatHandler
            {
                public async Task HandleAsync(WebSocket socket, CancellationToken ct)
                {
                    await using var [|connection|] = new TaskScope(ct);
                    connection.Start(token => Loops.ReceiveAsync(socket, token));
                    connection.Start(token => Loops.SendAsync(socket, token));
                }
            }
            """,
            Usings + """
            class ChatHandler
            {
                public async Task HandleAsync(WebSocket socket, CancellationToken ct)
                {
                    await using var connection = new TaskScope(ct);
                    connection.Start(token => Loops.ReceiveAsync(socket, token));
                    connection.Start(token => Loops.SendAsync(socket, token));
                    await connection.JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_completes_the_stack_before_the_final_return()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class MessageRepository(DbConnection connection)
            {
                public async Task<int> SaveAsync(CancellationToken ct)
                {
                    await using (var [|stack|] = new AsyncExitStack())
                    {
                        await stack.EnterAsync(Loops.Transaction(connection), ct);
                        return 1;
                    }
                }
            }
            """,
            Usings + """
            class MessageRepository(DbConnection connection)
            {
                public async Task<int> SaveAsync(CancellationToken ct)
                {
                    await using (var stack = new AsyncExitStack())
                    {
                        await stack.EnterAsync(Loops.Transaction(connection), ct);
                        stack.Complete();
                        return 1;
                    }
                }
            }
            """);
    }
}
