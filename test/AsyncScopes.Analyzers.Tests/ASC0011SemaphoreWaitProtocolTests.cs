namespace AsyncScopes.Analyzers.Tests;

using VerifyCS = Verify<ASC0011SemaphoreWaitProtocol>;
using VerifyFix = Verify<ASC0011SemaphoreWaitProtocol, ASC0011SemaphoreWaitProtocolFix>;

public sealed class ASC0011SemaphoreWaitProtocolTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Threading;
        using System.Threading.Tasks;

        """;

    private const string InsideTry =
        "waits inside the try whose finally releases the permit: when the wait is cancelled, fails or times out, the finally releases a permit never taken; wait before the try";

    private const string Ignored =
        "ignores whether the permit was taken: when it times out, the release gives back a permit never taken; check the result";

    // Positive cases.

    [Fact]
    public async Task A_timed_wait_with_ConfigureAwait_whose_result_is_ignored_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Cache(SemaphoreSlim refreshing)
            {
                public async Task RefreshAsync(Func<Task> load)
                {
                    await [|refreshing.WaitAsync(TimeSpan.FromSeconds(30))|].ConfigureAwait(false);
                    try
                    {
                        await load().ConfigureAwait(false);
                    }
                    finally
                    {
                        refreshing.Release();
                    }
                }
            }
            """);
    }


    [Fact]
    public async Task A_cancellable_wait_inside_the_try_that_releases_is_reported_with_the_call()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Inventory
            {
                private readonly SemaphoreSlim _gate = new(1, 1);
                private int _stock;

                public async Task TakeAsync(CancellationToken ct)
                {
                    try
                    {
                        await {|#0:_gate.WaitAsync(ct)|};
                        _stock--;
                    }
                    finally
                    {
                        _gate.Release();
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("_gate.WaitAsync(ct)", InsideTry));
    }

    [Fact]
    public async Task A_synchronous_cancellable_wait_inside_the_try_that_releases_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Ledger(SemaphoreSlim gate)
            {
                public void Append(List<string> lines, string line, CancellationToken ct)
                {
                    try
                    {
                        [|gate.Wait(ct)|];
                        lines.Add(line);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_checked_inside_the_try_that_releases_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Exporter(SemaphoreSlim slots)
            {
                public async Task<bool> ExportAsync(Func<Task> export)
                {
                    try
                    {
                        if (!await [|slots.WaitAsync(TimeSpan.FromSeconds(5))|])
                        {
                            return false; // the finally still releases
                        }

                        await export();
                        return true;
                    }
                    finally
                    {
                        slots.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_wait_inside_the_try_of_an_async_lambda_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Crawler
            {
                public Task CrawlAsync(IEnumerable<Func<Task>> pages, CancellationToken ct)
                {
                    var throttle = new SemaphoreSlim(4);
                    var work = new List<Task>();
                    foreach (var page in pages)
                    {
                        work.Add(Task.Run(async () =>
                        {
                            try
                            {
                                await [|throttle.WaitAsync(ct)|];
                                await page();
                            }
                            finally
                            {
                                throttle.Release();
                            }
                        }));
                    }

                    return Task.WhenAll(work);
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_whose_result_is_ignored_before_a_release_is_reported_with_the_call()
    {
        await VerifyCS.DiagnosticsAsync(
            Usings + """
            class Cache(SemaphoreSlim refreshing)
            {
                public async Task RefreshAsync(Func<Task> load)
                {
                    await {|#0:refreshing.WaitAsync(TimeSpan.FromSeconds(30))|};
                    try
                    {
                        await load();
                    }
                    finally
                    {
                        refreshing.Release();
                    }
                }
            }
            """,
            VerifyCS.Diagnostic().WithLocation(0).WithArguments("refreshing.WaitAsync(TimeSpan.FromSeconds(30))", Ignored));
    }

    [Fact]
    public async Task A_synchronous_timed_wait_in_milliseconds_whose_result_is_ignored_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Printer(SemaphoreSlim port)
            {
                public void Print(Action print)
                {
                    [|port.Wait(100)|];
                    try
                    {
                        print();
                    }
                    finally
                    {
                        port.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_discarded_with_an_underscore_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Uploader(SemaphoreSlim gate)
            {
                public async Task UploadAsync(Func<Task> upload, CancellationToken ct)
                {
                    _ = await [|gate.WaitAsync(1000, ct)|];
                    try
                    {
                        await upload();
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_ignored_before_a_release_that_is_not_in_a_finally_is_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Counter(SemaphoreSlim gate)
            {
                private int _count;

                public void Increment()
                {
                    [|gate.Wait(TimeSpan.FromMilliseconds(50))|];
                    _count++;
                    gate.Release();
                }
            }
            """);
    }

    // Negative cases.

    [Fact]
    public async Task A_wait_before_the_try_that_releases_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Inventory(SemaphoreSlim gate)
            {
                public async Task TakeAsync(Func<Task> take, CancellationToken ct)
                {
                    await gate.WaitAsync(ct);
                    try
                    {
                        await take();
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_wait_inside_the_try_whose_release_checks_a_flag_set_by_the_wait_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Exporter(SemaphoreSlim slots)
            {
                public async Task<bool> ExportAsync(Func<Task> export, CancellationToken ct)
                {
                    bool taken = false;
                    try
                    {
                        taken = await slots.WaitAsync(TimeSpan.FromSeconds(5), ct);
                        if (!taken)
                        {
                            return false;
                        }

                        await export();
                        return true;
                    }
                    finally
                    {
                        if (taken)
                        {
                            slots.Release();
                        }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_checked_before_the_try_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Cache(SemaphoreSlim refreshing)
            {
                public async Task<bool> RefreshAsync(Func<Task> load)
                {
                    if (!await refreshing.WaitAsync(TimeSpan.FromSeconds(30)))
                    {
                        return false;
                    }

                    try
                    {
                        await load();
                        return true;
                    }
                    finally
                    {
                        refreshing.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_wait_that_cannot_be_cancelled_inside_the_try_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Ledger(SemaphoreSlim gate)
            {
                public async Task AppendAsync(List<string> lines, string line)
                {
                    try
                    {
                        await gate.WaitAsync(); // only fails if the semaphore was disposed
                        lines.Add(line);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_ignored_in_a_function_that_never_releases_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Signal(SemaphoreSlim ready)
            {
                public async Task WaitForReadyAsync()
                {
                    await ready.WaitAsync(TimeSpan.FromSeconds(10)); // a signal another thread releases
                }
            }
            """);
    }

    [Fact]
    public async Task A_wait_inside_a_try_whose_finally_releases_another_semaphore_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Pipeline(SemaphoreSlim input, SemaphoreSlim output)
            {
                public async Task MoveAsync(Func<Task> move, CancellationToken ct)
                {
                    await output.WaitAsync(ct);
                    try
                    {
                        await input.WaitAsync(ct); // released by the producer, not here
                        await move();
                    }
                    finally
                    {
                        output.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_timed_wait_whose_result_is_kept_and_checked_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Printer(SemaphoreSlim port)
            {
                public bool TryPrint(Action print)
                {
                    bool taken = port.Wait(100);
                    if (!taken)
                    {
                        return false;
                    }

                    try
                    {
                        print();
                        return true;
                    }
                    finally
                    {
                        port.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task A_try_acquire_with_Wait_of_zero_that_is_checked_is_not_reported()
    {
        await VerifyCS.DiagnosticsAsync(Usings + """
            class Throttle(SemaphoreSlim slots)
            {
                public bool TryRun(Action work)
                {
                    if (!slots.Wait(0))
                    {
                        return false;
                    }

                    try
                    {
                        work();
                        return true;
                    }
                    finally
                    {
                        slots.Release();
                    }
                }
            }
            """);
    }

    // The fixes.

    [Fact]
    public async Task The_fix_moves_a_wait_that_starts_the_try_in_front_of_it()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Inventory(SemaphoreSlim gate)
            {
                public async Task TakeAsync(Func<Task> take, CancellationToken ct)
                {
                    try
                    {
                        await [|gate.WaitAsync(ct)|];
                        await take();
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            """,
            Usings + """
            class Inventory(SemaphoreSlim gate)
            {
                public async Task TakeAsync(Func<Task> take, CancellationToken ct)
                {
                    await gate.WaitAsync(ct);
                    try
                    {
                        await take();
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task The_fix_checks_an_ignored_timed_wait_and_throws_when_it_timed_out()
    {
        await VerifyFix.FixAsync(
            Usings + """
            class Cache(SemaphoreSlim refreshing)
            {
                public async Task RefreshAsync(Func<Task> load)
                {
                    await [|refreshing.WaitAsync(TimeSpan.FromSeconds(30))|];
                    try
                    {
                        await load();
                    }
                    finally
                    {
                        refreshing.Release();
                    }
                }
            }
            """,
            Usings + """
            class Cache(SemaphoreSlim refreshing)
            {
                public async Task RefreshAsync(Func<Task> load)
                {
                    if (!await refreshing.WaitAsync(TimeSpan.FromSeconds(30)))
                    {
                        throw new TimeoutException();
                    }

                    try
                    {
                        await load();
                    }
                    finally
                    {
                        refreshing.Release();
                    }
                }
            }
            """);
    }
}
