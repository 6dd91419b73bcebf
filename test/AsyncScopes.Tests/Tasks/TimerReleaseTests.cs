using System.Runtime.CompilerServices;
using AsyncScopes.Tests.Support;

namespace AsyncScopes.Tests.Tasks;

/// <summary>
/// A deadline and a scope with a timeout hold a timer and a registration on the caller's token: both are released when
/// the call ends or the scope closes, and the timer never holds the creator's <see cref="AsyncLocal{T}"/> values.
/// </summary>
public sealed class TimerReleaseTests
{
    private static readonly TimeSpan LongTimeout = TimeSpan.FromHours(1);

    private readonly TrackingTimeProvider _time = new();

    [Fact]
    public async Task A_deadline_disposes_its_timer_when_the_work_ends()
    {
        Assert.Equal(1, await Deadline.RunAsync(LongTimeout, _ => Task.FromResult(1), timeProvider: _time));

        Assert.Single(_time.MadeWithFlowSuppressed);
        Assert.Equal(0, _time.Undisposed);
    }

    [Fact]
    public async Task A_deadlines_timer_does_not_capture_the_execution_context_and_the_work_runs_with_the_callers_flow()
    {
        var ambient = new AsyncLocal<string?> { Value = "the caller's" };
        bool workFlowSuppressed = true;
        string? workAmbient = null;

        await Deadline.RunAsync(
            LongTimeout,
            _ =>
            {
                workFlowSuppressed = ExecutionContext.IsFlowSuppressed();
                workAmbient = ambient.Value;
                return Task.CompletedTask;
            },
            timeProvider: _time);

        Assert.Equal([true], _time.MadeWithFlowSuppressed);
        Assert.False(workFlowSuppressed);
        Assert.Equal("the caller's", workAmbient);
    }

    [Fact]
    public void A_deadline_that_ended_is_not_kept_alive_by_the_callers_token()
    {
        using var outer = new CancellationTokenSource();

        RunDeadlineToCompletion(outer.Token);

        Assert.Equal(0, _time.Reachable());
        GC.KeepAlive(outer);
    }

    [Fact]
    public async Task A_deadline_disposes_its_token_source_when_the_work_ends()
    {
        WaitHandle? handle = null;

        await Deadline.RunAsync(
            LongTimeout,
            token =>
            {
                handle = token.WaitHandle;
                return Task.CompletedTask;
            },
            timeProvider: _time);

        Assert.NotNull(handle);
        Assert.True(handle.SafeWaitHandle.IsClosed);
    }

    [Fact]
    public async Task A_scope_with_a_timeout_disposes_its_timer_when_it_closes()
    {
        var scope = new TaskScope(new TaskScopeOptions { Timeout = LongTimeout, TimeProvider = _time });
        _ = scope.Start(_ => Task.CompletedTask);

        await scope.JoinAsync();

        Assert.Equal([true], _time.MadeWithFlowSuppressed);
        Assert.Equal(0, _time.Undisposed);
    }

    [Fact]
    public void A_scope_that_closed_is_not_kept_alive_by_the_callers_token()
    {
        using var outer = new CancellationTokenSource();

        JoinScope(outer.Token);

        Assert.Equal(0, _time.Reachable());
        GC.KeepAlive(outer);
    }

    // Not inlined, so that nothing of the deadline stays on the test's stack.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RunDeadlineToCompletion(CancellationToken token)
    {
        var run = Deadline.RunAsync(LongTimeout, _ => Task.FromResult(1), token, _time);
        Assert.True(run.IsCompletedSuccessfully); // the work completed synchronously: so did the call
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void JoinScope(CancellationToken token)
    {
        var scope = new TaskScope(new TaskScopeOptions { Timeout = LongTimeout, TimeProvider = _time }, token);
        Assert.True(scope.JoinAsync().IsCompletedSuccessfully); // no child: the join completed at once
    }
}
