using System.Runtime.CompilerServices;

namespace AsyncScopes.Tests.Contexts;

/// <summary>One test per row of the WithAsync outcome table, for both overloads.</summary>
public sealed class WithAsyncTests
{
    [Fact]
    public async Task Body_completes_and_exit_returns_gives_the_body_result()
    {
        var manager = new RecordingManager<string>("resource");
        string? seenValue = null;

        string? result = await manager.WithAsync((value, _) =>
        {
            seenValue = value;
            return Task.FromResult("result");
        });

        Assert.Equal("result", result);
        Assert.Equal("resource", seenValue);
        Assert.Equal([null], manager.ExitsSeen);
    }

    [Fact]
    public async Task Body_completes_and_exit_returns_completes_the_task_overload()
    {
        var manager = new RecordingManager<int>(1);
        bool ran = false;

        await manager.WithAsync((_, _) =>
        {
            ran = true;
            return Task.CompletedTask;
        });

        Assert.True(ran);
        Assert.Equal([null], manager.ExitsSeen);
    }

    [Fact]
    public async Task Body_completes_and_exit_throws_gives_the_exit_exception()
    {
        var manager = new RecordingManager<int>(1, ExitBehavior.Throw);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(
            () => manager.WithAsync((_, _) => Task.FromResult(42)));
        var thrownByTaskOverload = await Assert.ThrowsAsync<InvalidOperationException>(
            () => manager.WithAsync((_, _) => Task.CompletedTask));

        Assert.Same(manager.ExitError, thrown);
        Assert.Same(manager.ExitError, thrownByTaskOverload);
        Assert.Equal([null, null], manager.ExitsSeen);
    }

    [Fact]
    public async Task Body_throws_and_exit_returns_false_rethrows_the_body_exception_with_its_stack_trace()
    {
        var manager = new RecordingManager<int>(1);

        var thrown = await Assert.ThrowsAsync<FormatException>(
            () => manager.WithAsync<int, int>(async (_, _) => await ThrowingBodyAsync()));

        Assert.Equal([thrown], manager.ExitsSeen);
        Assert.Contains(nameof(ThrowingBodyAsync), thrown.StackTrace, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Body_throws_and_exit_returns_false_rethrows_from_the_task_overload()
    {
        var manager = new RecordingManager<int>(1);
        var error = new FormatException("body");

        var thrown = await Assert.ThrowsAsync<FormatException>(
            () => manager.WithAsync((_, _) => Task.FromException(error)));

        Assert.Same(error, thrown);
        Assert.Equal([error], manager.ExitsSeen);
    }

    [Fact]
    public async Task Body_throws_and_exit_returns_true_suppresses_and_returns_default()
    {
        var error = new FormatException("body");
        var forString = new RecordingManager<int>(1, ExitBehavior.ReturnTrue);
        var forInt = new RecordingManager<int>(1, ExitBehavior.ReturnTrue);
        var forTask = new RecordingManager<int>(1, ExitBehavior.ReturnTrue);

        string? text = await forString.WithAsync<int, string>((_, _) => throw error);
        int number = await forInt.WithAsync<int, int>((_, _) => Task.FromException<int>(error));
        await forTask.WithAsync((_, _) => Task.FromException(error));

        Assert.Null(text);
        Assert.Equal(0, number);
        Assert.Equal([error], forString.ExitsSeen);
        Assert.Equal([error], forInt.ExitsSeen);
        Assert.Equal([error], forTask.ExitsSeen);
    }

    [Fact]
    public async Task Exit_returning_true_without_an_exception_changes_nothing()
    {
        var manager = new RecordingManager<int>(1, ExitBehavior.ReturnTrue);

        int result = await manager.WithAsync((_, _) => Task.FromResult(7));

        Assert.Equal(7, result);
    }

    [Fact]
    public async Task Body_throws_and_exit_rethrows_the_same_exception_gives_it_unwrapped()
    {
        var manager = new RecordingManager<int>(1, ExitBehavior.RethrowSeen);
        var error = new FormatException("body");

        var thrown = await Assert.ThrowsAsync<FormatException>(
            () => manager.WithAsync<int, int>((_, _) => throw error));

        Assert.Same(error, thrown);
    }

    [Fact]
    public async Task Body_throws_and_exit_throws_another_gives_ScopeExitException_of_both_in_order()
    {
        var manager = new RecordingManager<int>(1, ExitBehavior.Throw);
        var error = new FormatException("body");

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(
            () => manager.WithAsync((_, _) => Task.FromException(error)));

        Assert.Equal<Exception>([error, manager.ExitError], thrown.InnerExceptions);
    }

    [Fact]
    public async Task Body_throwing_a_ScopeExitException_and_exit_throwing_appends_flat()
    {
        var first = new FormatException("first");
        var second = new ArithmeticException("second");
        var combined = new ScopeExitException([first, second]);
        var manager = new RecordingManager<int>(1, ExitBehavior.Throw);

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(
            () => manager.WithAsync<int, int>((_, _) => throw combined));

        Assert.Equal<Exception>([first, second, manager.ExitError], thrown.InnerExceptions);
        Assert.DoesNotContain(thrown.InnerExceptions, e => e is ScopeExitException);
    }

    [Fact]
    public async Task Nested_failing_exits_stay_flat()
    {
        var error = new FormatException("body");
        var inner = new RecordingManager<int>(1, ExitBehavior.Throw);
        var outer = new RecordingManager<int>(2, ExitBehavior.Throw, new ArithmeticException("outer exit"));

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(
            () => outer.WithAsync((_, ct) => inner.WithAsync((_, _) => Task.FromException(error), ct)));

        Assert.Equal<Exception>([error, inner.ExitError, outer.ExitError], thrown.InnerExceptions);
        var seenByOuter = Assert.IsType<ScopeExitException>(Assert.Single(outer.ExitsSeen));
        Assert.Equal<Exception>([error, inner.ExitError], seenByOuter.InnerExceptions);
    }

    [Fact]
    public async Task Enter_throws_gives_the_enter_exception_and_runs_neither_body_nor_exit()
    {
        var error = new TimeoutException("enter");
        var manager = new RecordingManager<int>(1) { EnterError = error };
        bool bodyRan = false;

        var thrown = await Assert.ThrowsAsync<TimeoutException>(() => manager.WithAsync((_, _) =>
        {
            bodyRan = true;
            return Task.FromResult(1);
        }));

        Assert.Same(error, thrown);
        Assert.False(bodyRan);
        Assert.Empty(manager.ExitsSeen);
    }

    [Fact]
    public async Task A_synchronous_throw_from_the_body_reaches_the_exit()
    {
        var manager = new RecordingManager<int>(1);
        var error = new FormatException("sync");

        var thrown = await Assert.ThrowsAsync<FormatException>(
            () => manager.WithAsync((_, _) => throw error));

        Assert.Same(error, thrown);
        Assert.Equal([error], manager.ExitsSeen);
    }

    [Fact]
    public async Task A_cancelled_body_runs_the_exit_once_and_its_cancellation_propagates()
    {
        using var cts = new CancellationTokenSource();
        var manager = new RecordingManager<int>(1);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var run = manager.WithAsync(async (_, ct) =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }, cts.Token);
        await started.Task;
        await cts.CancelAsync();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Equal(cts.Token, thrown.CancellationToken);
        var seen = Assert.Single(manager.ExitsSeen);
        Assert.Same(thrown, seen);
    }

    [Fact]
    public async Task The_token_goes_to_enter_and_body()
    {
        using var cts = new CancellationTokenSource();
        var manager = new RecordingManager<int>(1);
        CancellationToken bodyToken = default;

        await manager.WithAsync((_, ct) =>
        {
            bodyToken = ct;
            return Task.CompletedTask;
        }, cts.Token);

        Assert.Equal(cts.Token, manager.EnterToken);
        Assert.Equal(cts.Token, bodyToken);
    }

    [Fact]
    public void Null_arguments_throw_ArgumentNullException_at_the_call()
    {
        var manager = new RecordingManager<int>(1);

        // Validation happens before a task exists, so the call itself throws.
        Assert.Throws<ArgumentNullException>(() => { _ = AsyncContext.WithAsync(null!, (int _, CancellationToken _) => Task.CompletedTask); });
        Assert.Throws<ArgumentNullException>(() => { _ = manager.WithAsync((Func<int, CancellationToken, Task>)null!); });
        Assert.Throws<ArgumentNullException>(() => { _ = manager.WithAsync((Func<int, CancellationToken, Task<int>>)null!); });
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<int> ThrowingBodyAsync()
    {
        await Task.Yield();
        throw new FormatException("thrown deep in the body");
    }
}
