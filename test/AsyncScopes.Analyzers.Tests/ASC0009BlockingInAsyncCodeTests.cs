namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0009BlockingInAsyncCode>;
using VerifyFix = Verify<ASC0009BlockingInAsyncCode, ASC0009BlockingInAsyncCodeFix>;

public sealed class ASC0009BlockingInAsyncCodeTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Net.Http;
        using System.Net.WebSockets;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    // Positive cases.

    [Fact]
    public async Task Result_of_a_request_in_an_async_handler_is_reported_with_the_call_and_the_advice()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class PriceHandler(HttpClient http)
            {
                public async Task<string> HandleAsync(string sku, CancellationToken ct)
                {
                    var audit = http.GetStringAsync("/audit/" + sku, ct);
                    await Task.Yield();
                    return {|#0:audit.Result|};
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("audit.Result", "await the task instead"));
    }

    [Fact]
    public async Task Wait_on_the_receive_loop_in_an_async_websocket_handler_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class ChatEndpoint
            {
                public async Task RunAsync(WebSocket socket, Func<Task> receiveLoop, CancellationToken ct)
                {
                    var receiving = receiveLoop();
                    await socket.SendAsync(new byte[] { 1 }, WebSocketMessageType.Text, true, ct);
                    [|receiving.Wait()|];
                }
            }
            """);
    }

    [Fact]
    public async Task GetAwaiter_GetResult_inside_an_async_lambda_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Warmup(HttpClient http)
            {
                public Task StartAsync() => Task.Run(async () =>
                {
                    await Task.Yield();
                    var page = [|http.GetStringAsync("/health").GetAwaiter().GetResult()|];
                    Console.WriteLine(page.Length);
                });
            }
            """);
    }

    [Fact]
    public async Task SemaphoreSlim_Wait_in_an_async_queue_consumer_is_reported_with_WaitAsync_as_the_advice()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class JobQueue
            {
                private readonly SemaphoreSlim _available = new(0);
                private readonly Queue<Func<Task>> _jobs = new();

                public async Task ConsumeAsync(CancellationToken ct)
                {
                    while (true)
                    {
                        {|#0:_available.Wait(ct)|};
                        Func<Task> job;
                        lock (_jobs)
                        {
                            job = _jobs.Dequeue();
                        }

                        await job();
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_available.Wait(ct)", "await WaitAsync instead"));
    }

    [Fact]
    public async Task WaitOne_on_a_wait_handle_in_an_async_method_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Listener(ManualResetEvent started)
            {
                public async Task WaitUntilListeningAsync()
                {
                    await Task.Yield();
                    [|started.WaitOne()|];
                }
            }
            """);
    }

    [Fact]
    public async Task Task_Delay_Wait_in_an_async_retry_loop_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Retry(HttpClient http)
            {
                public async Task<string> GetAsync(string path)
                {
                    for (int attempt = 1; ; attempt++)
                    {
                        try
                        {
                            return await http.GetStringAsync(path);
                        }
                        catch (HttpRequestException) when (attempt < 3)
                        {
                            [|Task.Delay(100 * attempt).Wait()|];
                        }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Thread_Sleep_between_attempts_of_an_async_send_is_reported_with_Task_Delay_as_the_advice()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Outbox(HttpClient http)
            {
                public async Task DeliverAsync(Uri hook, HttpContent body)
                {
                    for (var attempt = 1; attempt <= 3; attempt++)
                    {
                        using var response = await http.PostAsync(hook, body);
                        if (response.IsSuccessStatusCode)
                        {
                            return;
                        }

                        {|#0:Thread.Sleep(250 * attempt)|};
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("Thread.Sleep(250 * attempt)", "await Task.Delay instead"));
    }

    [Fact]
    public async Task Result_of_a_value_task_in_an_async_local_function_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Cache(Func<string, ValueTask<int>> load)
            {
                public Task<int> SumAsync(string[] keys)
                {
                    return SumAsyncCore();

                    async Task<int> SumAsyncCore()
                    {
                        int sum = 0;
                        foreach (var key in keys)
                        {
                            await Task.Yield();
                            sum += [|load(key).Result|];
                        }

                        return sum;
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Task_WaitAll_in_an_async_fan_out_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Fanout(HttpClient http)
            {
                public async Task FetchAsync(string[] paths)
                {
                    await Task.Yield();
                    var pages = Array.ConvertAll(paths, path => (Task)http.GetStringAsync(path));
                    [|Task.WaitAll(pages)|];
                }
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task Tasks_known_complete_after_WhenAll_WhenAny_or_in_a_continuation_are_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Aggregator
            {
                public async Task<int> SumAsync(Task<int>[] parts, Task<int> first, Task<int> second)
                {
                    await Task.WhenAll(parts);
                    int sum = parts[0].Result;
                    foreach (var part in parts)
                    {
                        sum += part.Result;
                    }

                    var done = await Task.WhenAny(first, second);
                    sum += done.Result + (await Task.WhenAny(first, second)).Result;
                    await first.ContinueWith(async finished => { await Task.Yield(); sum += finished.Result; }).Unwrap();
                    return sum;
                }
            }
            """);
    }

    [Fact]
    public async Task Waits_of_no_time_are_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Poller(SemaphoreSlim gate, ManualResetEvent stop)
            {
                public async Task<bool> PollAsync()
                {
                    while (!stop.WaitOne(0))
                    {
                        await Task.Delay(10);
                    }

                    Thread.Sleep(0);
                    Thread.Sleep(TimeSpan.Zero);
                    await BackoffAsync(async: false);
                    return gate.Wait(TimeSpan.Zero);
                }

                // Written once to run either way: the synchronous branch runs only for a synchronous caller.
                private static async Task BackoffAsync(bool async)
                {
                    if (async)
                    {
                        await Task.Delay(100);
                    }
                    else
                    {
                        Thread.Sleep(100);
                    }
                }
            }
            """);
    }


    [Fact]
    public async Task Result_after_the_task_was_awaited_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class PriceHandler(HttpClient http)
            {
                public async Task<int> HandleAsync(string sku)
                {
                    var price = http.GetStringAsync("/price/" + sku);
                    await price;
                    return price.Result.Length;
                }
            }
            """);
    }

    [Fact]
    public async Task Results_after_await_Task_WhenAll_of_them_are_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Dashboard(HttpClient http)
            {
                public async Task<string> LoadAsync()
                {
                    var orders = http.GetStringAsync("/orders");
                    var stock = http.GetStringAsync("/stock");
                    await Task.WhenAll(orders, stock);
                    return orders.Result + stock.Result;
                }
            }
            """);
    }

    [Fact]
    public async Task Result_under_an_IsCompletedSuccessfully_check_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Cached(Task<string> pending)
            {
                public async Task<string> GetAsync()
                {
                    if (pending.IsCompletedSuccessfully)
                    {
                        return pending.Result;
                    }

                    return await pending;
                }
            }
            """);
    }

    [Fact]
    public async Task Blocking_in_a_synchronous_method_is_not_this_rules()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Startup(HttpClient http)
            {
                public string LoadConfiguration() => http.GetStringAsync("/config").Result;

                public void Backoff(int attempt) => Thread.Sleep(100 * attempt);
            }
            """);
    }

    [Fact]
    public async Task A_wait_inside_a_lock_of_an_async_method_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Ledger
            {
                private readonly object _gate = new();
                private Task _flushed = Task.CompletedTask;

                public async Task AppendAsync(string line)
                {
                    await Task.Yield();
                    lock (_gate)
                    {
                        _flushed.Wait(); // cannot await inside a lock
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Blocking_in_an_async_DisposeAsync_is_left_to_ASC0002()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            sealed class Session(Task receiveLoop) : IAsyncDisposable
            {
                public async ValueTask DisposeAsync()
                {
                    await Task.Yield();
                    receiveLoop.Wait();
                }
            }
            """);
    }

    [Fact]
    public async Task SemaphoreSlim_Wait_of_zero_which_never_blocks_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Throttle
            {
                private readonly SemaphoreSlim _slots = new(4);

                public async Task<bool> TryRunAsync(Func<Task> work)
                {
                    if (!_slots.Wait(0))
                    {
                        return false;
                    }

                    try
                    {
                        await work();
                        return true;
                    }
                    finally
                    {
                        _slots.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task GetResult_of_a_task_known_faulted_rethrows_and_is_not_reported()
    {
        // Npgsql's NpgsqlCommand: a send that failed at once is rethrown with its own stack.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Command(Func<Task> send)
            {
                public async Task PrepareAsync()
                {
                    var sendTask = send();
                    if (sendTask.IsFaulted)
                        sendTask.GetAwaiter().GetResult();

                    await sendTask;
                }
            }
            """);
    }

    [Fact]
    public async Task The_synchronous_branch_of_an_if_async_test_is_not_reported()
    {
        // Npgsql's PoolingDataSource: the synchronous branch of `if (async)` waits for a connector on its own.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            sealed class Pool(Func<CancellationToken, ValueTask<string>> next)
            {
                private readonly SemaphoreSlim _syncOverAsync = new(1, 1);

                public async ValueTask<string> RentAsync(bool async, CancellationToken ct)
                {
                    if (async)
                        return await next(ct).ConfigureAwait(false);
                    else
                    {
                        _syncOverAsync.Wait(ct);
                        try
                        {
                            return next(ct).AsTask().GetAwaiter().GetResult();
                        }
                        finally
                        {
                            _syncOverAsync.Release();
                        }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task The_synchronous_branch_of_code_written_to_run_either_way_is_not_reported()
    {
        // MySqlConnector's shape: one async method serves the synchronous API too, and takes the synchronous branch
        // only when its caller asked for synchronous I/O.
        await VerifyCS.NoDiagnosticsAsync(Usings + """
            enum IOBehavior { Synchronous, Asynchronous }

            sealed class Pool
            {
                private readonly SemaphoreSlim _sessions = new(10);

                public async ValueTask<bool> TakeAsync(IOBehavior ioBehavior, TimeSpan wait, CancellationToken ct)
                {
                    if (ioBehavior == IOBehavior.Asynchronous)
                        await _sessions.WaitAsync(ct).ConfigureAwait(false);
                    else
                        _sessions.Wait(ct);

                    return ioBehavior == IOBehavior.Asynchronous
                        ? await _sessions.WaitAsync(wait, ct).ConfigureAwait(false)
                        : _sessions.Wait(wait, ct);
                }
            }
            """);
    }

    [Fact]
    public async Task Awaiting_WaitAsync_and_the_tasks_themselves_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Worker(SemaphoreSlim gate, HttpClient http)
            {
                public async Task<string> RunAsync(CancellationToken ct)
                {
                    await gate.WaitAsync(ct);
                    try
                    {
                        return await http.GetStringAsync("/work", ct);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            """);
    }

    // The fix.

    [Fact]
    public async Task The_fix_awaits_the_task_in_place_of_Result()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class PriceHandler(HttpClient http)
            {
                public async Task<int> HandleAsync(string sku)
                {
                    await Task.Yield();
                    return [|http.GetStringAsync("/price/" + sku).Result|].Length;
                }
            }
            """,
            Usings + """
            class PriceHandler(HttpClient http)
            {
                public async Task<int> HandleAsync(string sku)
                {
                    await Task.Yield();
                    return (await http.GetStringAsync("/price/" + sku)).Length;
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_awaits_Task_Delay_in_place_of_Thread_Sleep()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Poller(Func<Task<bool>> ready)
            {
                public async Task WaitReadyAsync()
                {
                    while (!await ready())
                    {
                        [|Thread.Sleep(50)|];
                        [|Thread.Sleep(millisecondsTimeout: 10)|];
                    }
                }
            }
            """,
            Usings + """
            class Poller(Func<Task<bool>> ready)
            {
                public async Task WaitReadyAsync()
                {
                    while (!await ready())
                    {
                        await Task.Delay(50);
                        await Task.Delay(10);
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_awaits_the_task_in_place_of_Wait()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class ChatEndpoint
            {
                public async Task RunAsync(Func<Task> receiveLoop)
                {
                    var receiving = receiveLoop();
                    await Task.Yield();
                    [|receiving.Wait()|];
                }
            }
            """,
            Usings + """
            class ChatEndpoint
            {
                public async Task RunAsync(Func<Task> receiveLoop)
                {
                    var receiving = receiveLoop();
                    await Task.Yield();
                    await receiving;
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_awaits_WaitAsync_with_the_same_arguments_in_place_of_a_semaphores_Wait()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class JobQueue(SemaphoreSlim available)
            {
                public async Task<bool> NextAsync(CancellationToken ct)
                {
                    await Task.Yield();
                    return [|available.Wait(TimeSpan.FromSeconds(5), ct)|];
                }
            }
            """,
            Usings + """
            class JobQueue(SemaphoreSlim available)
            {
                public async Task<bool> NextAsync(CancellationToken ct)
                {
                    await Task.Yield();
                    return await available.WaitAsync(TimeSpan.FromSeconds(5), ct);
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_does_not_add_a_second_ConfigureAwait()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Loader(HttpClient http)
            {
                public async Task<string> LoadAsync()
                {
                    await Task.Yield();
                    return [|http.GetStringAsync("/").ConfigureAwait(false).GetAwaiter().GetResult()|];
                }
            }
            """,
            Usings + """
            class Loader(HttpClient http)
            {
                public async Task<string> LoadAsync()
                {
                    await Task.Yield();
                    return await http.GetStringAsync("/").ConfigureAwait(false);
                }
            }
            """);
    }
}
