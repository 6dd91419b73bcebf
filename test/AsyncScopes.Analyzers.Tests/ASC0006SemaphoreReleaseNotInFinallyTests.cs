namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0006SemaphoreReleaseNotInFinally>;
using VerifyFix = Verify<ASC0006SemaphoreReleaseNotInFinally, ASC0006SemaphoreReleaseNotInFinallyFix>;

public sealed class ASC0006SemaphoreReleaseNotInFinallyTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task A_permit_released_at_the_end_of_work_started_after_the_wait_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Crawler(SemaphoreSlim throttle)
            {
                public async Task StartAsync(Func<Task> crawl, CancellationToken ct)
                {
                    await [|throttle.WaitAsync(ct)|];
                    _ = Task.Run(async () =>
                    {
                        await crawl();
                        throttle.Release(); // not when crawl throws
                    });
                }
            }
            """);
    }


    [Fact]
    public async Task A_send_lock_released_after_the_send_is_reported_with_the_wait_and_the_semaphore()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            sealed class SocketWriter(WebSocket socket)
            {
                private readonly SemaphoreSlim _sendLock = new(1, 1);

                public async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
                {
                    await {|#0:_sendLock.WaitAsync(ct)|};
                    await socket.SendAsync(frame, WebSocketMessageType.Text, true, ct);
                    _sendLock.Release();
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_sendLock.WaitAsync(ct)", "_sendLock"));
    }

    [Fact]
    public async Task A_synchronous_Wait_released_after_a_cache_update_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class PriceCache
            {
                private readonly SemaphoreSlim _gate = new(1, 1);
                private readonly Dictionary<string, decimal> _prices = new();

                public void Set(string symbol, decimal price)
                {
                    [|_gate.Wait()|];
                    _prices[symbol] = price;
                    _gate.Release();
                }
            }
            """);
    }

    [Fact]
    public async Task An_early_return_between_wait_and_release_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class UserRepository
            {
                private readonly SemaphoreSlim _writer = new(1, 1);
                private readonly HashSet<string> _names = new();

                public async Task<bool> AddAsync(string name, CancellationToken ct)
                {
                    await [|_writer.WaitAsync(ct)|].ConfigureAwait(false);
                    if (!_names.Add(name))
                    {
                        return false;
                    }

                    _writer.Release();
                    return true;
                }
            }
            """);
    }

    [Fact]
    public async Task A_finally_that_starts_after_other_statements_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class BatchWriter
            {
                private readonly SemaphoreSlim _gate = new(1, 1);
                private readonly Queue<string> _pending = new();

                public async Task FlushAsync(CancellationToken ct)
                {
                    await [|_gate.WaitAsync(ct)|];
                    var batch = _pending.Dequeue();
                    try
                    {
                        await Task.Delay(1, ct);
                    }
                    finally
                    {
                        _gate.Release();
                    }

                    Console.WriteLine(batch);
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_whose_release_is_not_in_a_finally_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class ConnectionLimiter
            {
                private readonly SemaphoreSlim _slots = new(10, 10);

                public async Task<bool> TryHandleAsync(Func<Task> handle)
                {
                    if (!await [|_slots.WaitAsync(TimeSpan.FromSeconds(1))|])
                    {
                        return false;
                    }

                    await handle();
                    _slots.Release();
                    return true;
                }
            }
            """);
    }

    [Fact]
    public async Task A_wait_in_a_lambda_released_outside_a_finally_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Throttle
            {
                private readonly SemaphoreSlim _gate = new(4, 4);

                public Func<Task> Wrap(Func<Task> work) => async () =>
                {
                    await [|_gate.WaitAsync()|];
                    await work();
                    _gate.Release();
                };
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task A_permit_released_by_a_continuation_or_after_a_catch_all_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Throttle(SemaphoreSlim slots)
            {
                public async Task<List<Task>> StartAsync(IEnumerable<Func<Task>> jobs, Action<Exception> log)
                {
                    var running = new List<Task>();
                    foreach (var job in jobs)
                    {
                        await slots.WaitAsync();
                        running.Add(job().ContinueWith(_ => slots.Release()));
                    }

                    await slots.WaitAsync();
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await Task.Yield();
                        }
                        catch (Exception e)
                        {
                            log(e);
                        }

                        slots.Release();
                    });
                    return running;
                }
            }
            """);
    }


    [Fact]
    public async Task A_permit_released_in_a_finally_of_work_started_after_the_wait_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Crawler(SemaphoreSlim throttle)
            {
                public async Task StartAsync(Func<Task> crawl, CancellationToken ct)
                {
                    await throttle.WaitAsync(ct);
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await crawl();
                        }
                        finally
                        {
                            throttle.Release();
                        }
                    });
                }
            }
            """);
    }


    [Fact]
    public async Task A_permit_handed_to_a_method_that_releases_it_in_a_finally_is_not_reported()
    {
        // NATS.Client's CommandWriter: a fast path holds the lock, a slow path passes it on (lockHeld: true).
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class CommandWriter
            {
                private readonly SemaphoreSlim _semLock = new(1);
                private Task? _flushTask;

                public ValueTask PingAsync(CancellationToken ct)
                {
                    if (!_semLock.Wait(0))
                    {
                        return PingStateMachineAsync(false, ct);
                    }

                    if (_flushTask is { IsCompletedSuccessfully: false })
                    {
                        return PingStateMachineAsync(true, ct);
                    }

                    try
                    {
                        Enqueue();
                    }
                    finally
                    {
                        _semLock.Release();
                    }

                    return default;
                }

                private async ValueTask PingStateMachineAsync(bool lockHeld, CancellationToken ct)
                {
                    if (!lockHeld)
                    {
                        await _semLock.WaitAsync(ct);
                    }

                    try
                    {
                        await _flushTask!;
                        Enqueue();
                    }
                    finally
                    {
                        _semLock.Release();
                    }
                }

                private void Enqueue()
                {
                }
            }
            """);
    }


    [Fact]
    public async Task A_release_in_a_finally_right_after_the_wait_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class SocketWriter(WebSocket socket)
            {
                private readonly SemaphoreSlim _sendLock = new(1, 1);

                public async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
                {
                    await _sendLock.WaitAsync(ct).ConfigureAwait(false);
                    try
                    {
                        await socket.SendAsync(frame, WebSocketMessageType.Text, true, ct);
                    }
                    finally
                    {
                        _sendLock.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_wait_inside_the_try_whose_finally_releases_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class PriceCache
            {
                private readonly SemaphoreSlim _gate = new(1, 1);
                private decimal _last;

                public void Set(decimal price)
                {
                    var taken = false;
                    try
                    {
                        _gate.Wait();
                        taken = true;
                        _last = price;
                    }
                    finally
                    {
                        if (taken) { _gate.Release(); }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_guarding_a_try_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class ConnectionLimiter
            {
                private readonly SemaphoreSlim _slots = new(10, 10);

                public async Task<bool> TryHandleAsync(Func<Task> handle)
                {
                    if (!await _slots.WaitAsync(TimeSpan.FromSeconds(1)))
                    {
                        return false;
                    }

                    try { await handle(); } finally { _slots.Release(); }
                    return true;
                }

                public async Task<bool> TryHandleNowAsync(Func<Task> handle)
                {
                    if (await _slots.WaitAsync(0))
                    {
                        try { await handle(); } finally { _slots.Release(); }
                        return true;
                    }

                    return false;
                }
            }
            """);
    }

    [Fact]
    public async Task A_semaphore_used_as_a_signal_released_elsewhere_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class JobSignal
            {
                private readonly SemaphoreSlim _available = new(0);
                private readonly Queue<string> _jobs = new();

                public void Post(string job) { lock (_jobs) { _jobs.Enqueue(job); } _available.Release(); }

                public async Task<string> TakeAsync(CancellationToken ct)
                {
                    await _available.WaitAsync(ct);
                    lock (_jobs) { return _jobs.Dequeue(); }
                }
            }
            """);
    }

    [Fact]
    public async Task LockAsync_in_a_using_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            using AsyncScopes;

            sealed class SocketWriter(WebSocket socket)
            {
                private readonly SemaphoreSlim _sendLock = new(1, 1);

                public async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
                {
                    using (await _sendLock.LockAsync(ct))
                    {
                        await socket.SendAsync(frame, WebSocketMessageType.Text, true, ct);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_release_of_another_semaphore_does_not_count_and_is_not_reported()
    {
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Handoff
            {
                private readonly SemaphoreSlim _items = new(0);
                private readonly SemaphoreSlim _space = new(8);

                public async Task MoveAsync(CancellationToken ct)
                {
                    await _items.WaitAsync(ct);
                    _space.Release();
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_holds_an_awaited_permit_in_a_using_of_LockAsync_and_imports_AsyncScopes()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class SocketWriter(WebSocket socket)
            {
                private readonly SemaphoreSlim _sendLock = new(1, 1);

                public async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
                {
                    await [|_sendLock.WaitAsync(ct)|].ConfigureAwait(false);
                    await socket.SendAsync(frame, WebSocketMessageType.Text, true, ct);
                    _sendLock.Release();
                    Console.WriteLine("sent");
                }
            }
            """,
            Usings.TrimEnd() + "\nusing AsyncScopes;\n\n" + """
            sealed class SocketWriter(WebSocket socket)
            {
                private readonly SemaphoreSlim _sendLock = new(1, 1);

                public async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
                {
                    using (await _sendLock.LockAsync(ct).ConfigureAwait(false))
                    {
                        await socket.SendAsync(frame, WebSocketMessageType.Text, true, ct);
                    }

                    Console.WriteLine("sent");
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_releases_a_synchronous_wait_in_a_finally()
    {
        await VerifyFix.FixAsync(
            Usings + """
            sealed class PriceCache
            {
                private readonly SemaphoreSlim _gate = new(1, 1);
                private readonly Dictionary<string, decimal> _prices = new();

                public void Set(string symbol, decimal price)
                {
                    [|_gate.Wait()|];
                    _prices[symbol] = price;
                    _gate.Release();
                }
            }
            """,
            Usings + """
            sealed class PriceCache
            {
                private readonly SemaphoreSlim _gate = new(1, 1);
                private readonly Dictionary<string, decimal> _prices = new();

                public void Set(string symbol, decimal price)
                {
                    _gate.Wait();
                    try
                    {
                        _prices[symbol] = price;
                    }
                    finally
                    {
                        _gate.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_pool_that_waits_either_way_and_hands_the_permit_on_with_its_session_is_not_reported()
    {
        // MySqlConnector's ConnectionPool: the wait is an if/else (asynchronous or synchronous I/O, as the caller
        // asked); a try/finally right after it releases, or the permit leaves with the session returned and a
        // catch-all gives it back on failure, after a declaration that cannot throw.
        await VerifyCS.NoDiagnosticsAsync("""
            using System;
            using System.Threading;
            using System.Threading.Tasks;

            enum IOBehavior { Synchronous, Asynchronous }

            sealed class Session { }

            sealed class Pool(Func<Task<Session>> connect, Func<Task> reap)
            {
                private readonly SemaphoreSlim _sessions = new(10);

                public async ValueTask<Session> GetSessionAsync(IOBehavior ioBehavior, CancellationToken ct)
                {
                    if (ioBehavior == IOBehavior.Asynchronous)
                        await _sessions.WaitAsync(ct).ConfigureAwait(false);
                    else
                        _sessions.Wait(ct);

                    Session? session = null;
                    try
                    {
                        session = await connect().ConfigureAwait(false);
                        return session;
                    }
                    catch (Exception)
                    {
                        _sessions.Release();
                        throw;
                    }
                }

                public void Return(Session session) => _sessions.Release();

                public async Task ReapAsync(IOBehavior ioBehavior, TimeSpan wait, CancellationToken ct)
                {
                    if (ioBehavior == IOBehavior.Asynchronous)
                    {
                        if (!await _sessions.WaitAsync(wait, ct).ConfigureAwait(false))
                            return;
                    }
                    else
                    {
                        if (!_sessions.Wait(wait, ct))
                            return;
                    }

                    try
                    {
                        await reap().ConfigureAwait(false);
                    }
                    finally
                    {
                        _sessions.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_either_way_whose_failure_leaves_before_the_try_is_not_reported()
    {
        // Npgsql's NpgsqlDataSource and ReplicationConnection: the result of the wait is kept, a guard leaves when it
        // failed, and the try that releases follows.
        await VerifyCS.NoDiagnosticsAsync("""
            using System;
            using System.Threading;
            using System.Threading.Tasks;

            sealed class Mappings(Func<Task> load)
            {
                private readonly SemaphoreSlim _setup = new(1, 1);

                public async Task BootstrapAsync(bool async, TimeSpan timeout, CancellationToken cancellationToken)
                {
                    var hasSemaphore = async
                        ? await _setup.WaitAsync(timeout, cancellationToken).ConfigureAwait(false)
                        : _setup.Wait(timeout, cancellationToken);

                    if (!hasSemaphore)
                    {
                        Console.Error.WriteLine("Timed out waiting for the type mappings of another connection.");
                        throw new TimeoutException();
                    }

                    try
                    {
                        await load().ConfigureAwait(false);
                    }
                    finally
                    {
                        _setup.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_guard_on_state_between_the_wait_and_the_try_loses_the_permit_and_is_reported()
    {
        await VerifyCS.DiagnosticsAsync("""
            using System;
            using System.Threading;
            using System.Threading.Tasks;

            sealed class Sender(Func<Task> send)
            {
                private readonly SemaphoreSlim _gate = new(1, 1);
                private bool _disposed;

                public async Task SendAsync()
                {
                    await [|_gate.WaitAsync()|];
                    if (_disposed)
                        throw new ObjectDisposedException(nameof(Sender));
                    try
                    {
                        await send();
                    }
                    finally
                    {
                        _gate.Release();
                    }
                }

                public void Dispose() => _disposed = true;
            }
            """);
    }
}
