namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0008ScopeNotDisposed>;
using VerifyFix = Verify<ASC0008ScopeNotDisposed, ASC0008ScopeNotDisposedFix>;

public sealed class ASC0008ScopeNotDisposedTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Data.Common;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;
        using AsyncScopes;

        """;

    // Positive cases.

    [Fact]
    public async Task A_lease_kept_when_the_query_finds_nothing_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class UserRepository(AsyncPool<DbConnection> pool)
            {
                public async Task<string?> FindAsync(int id, CancellationToken ct)
                {
                    var lease = {|#0:await pool.RentAsync(ct)|};
                    await using var command = lease.Value.CreateCommand();
                    command.CommandText = "SELECT name FROM users WHERE id = " + id;
                    if (await command.ExecuteScalarAsync(ct) is not string name)
                    {
                        return null;
                    }

                    await lease.DisposeAsync();
                    return name;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("pool lease", "is not disposed on every path: declare it with 'await using'"));
    }

    [Fact]
    public async Task A_lease_rented_and_used_in_one_expression_is_reported_as_dropped()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class UserRepository(AsyncPool<DbConnection> pool)
            {
                public async Task<string> ServerAsync(CancellationToken ct) => ({|#0:await pool.RentAsync(ct)|}).Value.ServerVersion;
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("pool lease", "is dropped without being disposed"));
    }

    [Fact]
    public async Task A_connection_scope_that_is_never_disposed_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class ChatHandler
            {
                public async Task HandleAsync(WebSocket socket, CancellationToken ct)
                {
                    var scope = [|new TaskScope(ct)|];
                    scope.Start(token => socket.ReceiveAsync(new byte[1024], token));
                    await Task.Delay(1, ct);
                }
            }
            """);
    }

    [Fact]
    public async Task A_work_queue_left_open_by_an_explicit_throw_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class WebhookBatch
            {
                public async Task DeliverAsync(IReadOnlyList<Uri> hooks, Func<Uri, CancellationToken, Task> post)
                {
                    var queue = [|new WorkQueue<Uri>(post, new WorkQueueOptions<Uri> { Workers = 2 })|];
                    foreach (var hook in hooks)
                    {
                        if (!hook.IsAbsoluteUri)
                        {
                            throw new ArgumentException("A relative webhook URL.", nameof(hooks));
                        }

                        await queue.EnqueueAsync(hook);
                    }

                    await queue.CompleteAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_lease_from_TryRent_dropped_on_one_branch_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class ReadCache(AsyncPool<DbConnection> pool)
            {
                public async Task<bool> TryWarmAsync(bool verbose)
                {
                    if ([|pool.TryRent(out var lease)|])
                    {
                        if (verbose)
                        {
                            Console.WriteLine(lease.Value.State);
                            return true;
                        }

                        await lease.DisposeAsync();
                        return true;
                    }

                    return false;
                }
            }
            """);
    }

    [Fact]
    public async Task An_exit_stack_discarded_at_once_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Startup
            {
                public void Configure(IAsyncDisposable database)
                {
                    _ = [|new AsyncExitStack()|];
                    Console.WriteLine(database);
                }
            }
            """);
    }

    [Fact]
    public async Task A_lease_replaced_by_a_retry_loop_without_disposal_is_reported()
    {
        // The local is declared outside the loop that assigns it: the control flow graph follows it around the loop.
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class HealthyConnection(AsyncPool<DbConnection> pool)
            {
                public async Task<string> VersionAsync(Func<DbConnection, Task<bool>> healthy, CancellationToken ct)
                {
                    PoolLease<DbConnection> lease;
                    while (true)
                    {
                        lease = {|#0:await pool.RentAsync(ct)|};
                        if (await healthy(lease.Value))
                        {
                            break;
                        }
                    }

                    await using (lease)
                    {
                        return lease.Value.ServerVersion;
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("pool lease", "is not disposed on every path: declare it with 'await using'"));
    }

    [Fact]
    public async Task A_lease_left_by_a_goto_retry_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class HealthyConnection(AsyncPool<DbConnection> pool)
            {
                public async Task<string> VersionAsync(Func<DbConnection, Task<bool>> healthy, CancellationToken ct)
                {
                    var attempts = 0;
                retry:
                    var lease = {|#0:await pool.RentAsync(ct)|};
                    if (!await healthy(lease.Value) && ++attempts < 3)
                    {
                        goto retry;
                    }

                    await using (lease)
                    {
                        return lease.Value.ServerVersion;
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("pool lease", "is not disposed on every path: declare it with 'await using'"));
    }

    [Fact]
    public async Task A_queue_left_open_by_a_return_in_a_catch_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Deliveries(Func<Uri, CancellationToken, Task> post)
            {
                public async Task<bool> DeliverAsync(IReadOnlyList<Uri> hooks, bool strict)
                {
                    var queue = {|#0:new WorkQueue<Uri>(post)|};
                    try
                    {
                        foreach (var hook in hooks)
                        {
                            if (strict && !hook.IsAbsoluteUri)
                            {
                                throw new ArgumentException("relative hook", nameof(hooks));
                            }

                            await queue.EnqueueAsync(hook);
                        }
                    }
                    catch (ArgumentException)
                    {
                        return false;
                    }

                    await queue.CompleteAsync();
                    return true;
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("WorkQueue", "is not disposed on every path: declare it with 'await using'"));
    }

    // Negative cases.

    [Fact]
    public async Task Await_using_declarations_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class UserRepository(AsyncPool<DbConnection> pool)
            {
                public async Task<object?> FindAsync(CancellationToken ct)
                {
                    await using var lease = await pool.RentAsync(ct).ConfigureAwait(false);
                    await using var scope = new TaskScope(ct);
                    await using var stack = new AsyncExitStack();
                    await using var queue = new WorkQueue<int>((i, t) => Task.CompletedTask);
                    stack.Complete();
                    await scope.JoinAsync();
                    await using var command = lease.Value.CreateCommand();
                    return await command.ExecuteScalarAsync(ct);
                }
            }
            """);
    }

    [Fact]
    public async Task Disposal_in_a_finally_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class UserRepository(AsyncPool<DbConnection> pool)
            {
                public async Task<object?> FindAsync(CancellationToken ct)
                {
                    var lease = await pool.RentAsync(ct);
                    try
                    {
                        await using var command = lease.Value.CreateCommand();
                        if (ct.IsCancellationRequested)
                        {
                            throw new OperationCanceledException(ct);
                        }

                        return await command.ExecuteScalarAsync(ct);
                    }
                    finally
                    {
                        await lease.DisposeAsync();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Objects_returned_stored_or_passed_on_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ConnectionHub
            {
                private TaskScope? _scope;
                private readonly List<AsyncExitStack> _stacks = new();

                public TaskScope Open(CancellationToken ct) => new TaskScope(ct);

                public void Start() => _scope = new TaskScope();

                public async Task<PoolLease<DbConnection>> RentAsync(AsyncPool<DbConnection> pool) => await pool.RentAsync();

                public void Track()
                {
                    var stack = new AsyncExitStack();
                    _stacks.Add(stack);
                }
            }
            """);
    }

    [Fact]
    public async Task A_scope_ended_by_its_join_and_a_queue_ended_by_CompleteAsync_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class Fanout
            {
                public async Task RunAsync(IEnumerable<Uri> hooks, Func<Uri, CancellationToken, Task> post)
                {
                    var scope = new TaskScope();
                    foreach (var hook in hooks)
                    {
                        scope.Start(ct => post(hook, ct));
                    }

                    await scope.JoinAsync();

                    var queue = new WorkQueue<Uri>(post);
                    foreach (var hook in hooks)
                    {
                        queue.TryEnqueue(hook);
                    }

                    var result = await queue.CompleteAsync();
                    Console.WriteLine(result.Completed);
                    await new TaskScope().JoinAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_TryRent_lease_disposed_when_taken_and_a_checked_failed_TryRent_are_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class ReadCache(AsyncPool<DbConnection> pool)
            {
                public async Task<bool> TryWarmAsync()
                {
                    if (!pool.TryRent(out var lease))
                    {
                        return false;
                    }

                    await using (lease)
                    {
                        Console.WriteLine(lease.Value.State);
                    }

                    return true;
                }

                public bool IsExhausted() => !pool.TryRent(out _) ? true : throw new InvalidOperationException();
            }
            """);
    }

    [Fact]
    public async Task A_lease_captured_by_a_callback_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class Deferred(AsyncPool<DbConnection> pool)
            {
                public async Task<Func<ValueTask>> BorrowAsync()
                {
                    var lease = await pool.RentAsync();
                    return () => lease.DisposeAsync();
                }
            }
            """);
    }

    [Fact]
    public async Task A_goto_retry_that_returns_the_lease_first_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            class HealthyConnection(AsyncPool<DbConnection> pool)
            {
                public async Task<string> VersionAsync(Func<DbConnection, Task<bool>> healthy, CancellationToken ct)
                {
                    var attempts = 0;
                retry:
                    var lease = await pool.RentAsync(ct);
                    if (!await healthy(lease.Value) && ++attempts < 3)
                    {
                        await lease.DisposeAsync();
                        goto retry;
                    }

                    await using (lease)
                    {
                        return lease.Value.ServerVersion;
                    }
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_declares_the_lease_with_await_using()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class UserRepository(AsyncPool<DbConnection> pool)
            {
                public async Task<string> VersionAsync(CancellationToken ct)
                {
                    // One connection for the whole check.
                    var lease = [|await pool.RentAsync(ct)|];
                    return lease.Value.ServerVersion;
                }
            }
            """,
            Usings + """
            class UserRepository(AsyncPool<DbConnection> pool)
            {
                public async Task<string> VersionAsync(CancellationToken ct)
                {
                    // One connection for the whole check.
                    await using var lease = await pool.RentAsync(ct);
                    return lease.Value.ServerVersion;
                }
            }
            """);
    }

    [Fact]
    public async Task A_local_passed_on_somewhere_gets_no_fix()
    {
        await VerifyFix.NoFixAsync(Usings + """
            class ChatHandler
            {
                private static void Remember(TaskScope scope) { }

                public async Task HandleAsync(bool keep)
                {
                    var scope = [|new TaskScope()|];
                    if (keep)
                    {
                        Remember(scope);
                    }

                    await Task.Yield();
                }
            }
            """);
    }
}
