using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Tasks;

/// <summary>
/// Each overload runs its deadline on the <see cref="TimeProvider"/> it is given. The timeout is long, so that the
/// system clock could not have fired it during the test: the token is cancelled exactly when the given clock reaches the
/// deadline, and not a tick before.
/// </summary>
public sealed class DeadlineTimeProviderTests
{
    private static readonly TimeSpan LongTimeout = TimeSpan.FromHours(1);

    private readonly FakeTimeProvider _time = new();
    private CancellationToken _workToken;

    [Fact]
    public async Task RunAsync_with_a_result_times_out_on_the_given_clock()
    {
        Task<int> run = Deadline.RunAsync(LongTimeout, async token => await UntilCancelledAsync(token), timeProvider: _time);

        AdvanceToTheDeadline();

        await Assert.ThrowsAsync<TimeoutException>(() => run);
    }

    [Fact]
    public async Task RunAsync_without_a_result_times_out_on_the_given_clock()
    {
        Task run = Deadline.RunAsync(LongTimeout, async token => { await UntilCancelledAsync(token); }, timeProvider: _time);

        AdvanceToTheDeadline();

        await Assert.ThrowsAsync<TimeoutException>(() => run);
    }

    [Fact]
    public async Task TryRunAsync_times_out_on_the_given_clock()
    {
        var run = Deadline.TryRunAsync(LongTimeout, async token => await UntilCancelledAsync(token), timeProvider: _time);

        AdvanceToTheDeadline();

        Assert.Equal((false, 0), await run);
    }

    private void AdvanceToTheDeadline()
    {
        Assert.True(_workToken.CanBeCanceled, "the work has started");
        _time.Advance(LongTimeout - TimeSpan.FromTicks(1));
        Assert.False(_workToken.IsCancellationRequested, "cancelled before the deadline");
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.True(_workToken.IsCancellationRequested, "not cancelled at the deadline of the given clock");
    }

    // The work: runs until its token is cancelled, then throws as work that observes its token does.
    private async Task<int> UntilCancelledAsync(CancellationToken token)
    {
        _workToken = token;
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (token.Register(static state => ((TaskCompletionSource)state!).TrySetResult(), cancelled))
        {
            await cancelled.Task;
        }

        token.ThrowIfCancellationRequested();
        return 1;
    }
}
