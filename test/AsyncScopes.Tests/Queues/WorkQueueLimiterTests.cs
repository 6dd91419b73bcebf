using AsyncScopes.Tests.Support;
using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Queues;

/// <summary><see cref="WorkQueueOptions{T}.Limiter"/>: a limit the queue shares, one permit per item.</summary>
public sealed class WorkQueueLimiterTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task An_item_is_handled_only_once_it_has_a_permit_and_gives_it_back()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 10);
        var held = limiter.AttemptAcquire(); // a scope's child, say
        var handled = new List<int>();
        await using var queue = new WorkQueue<int>(
            (item, _) =>
            {
                lock (handled)
                {
                    handled.Add(item);
                }

                return Task.CompletedTask;
            },
            new WorkQueueOptions<int> { Workers = 2, Limiter = limiter });

        await queue.EnqueueAsync(1);
        await limiter.Requested(1).WaitAsync(Patience);
        Assert.Empty(handled);
        held.Dispose();
        await queue.EnqueueAsync(2);
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(2, result.Completed);
        Assert.Equal([1, 2], handled.Order());
        Assert.Equal(1, limiter.Available);
    }

    [Fact]
    public async Task An_item_stopped_while_it_waits_is_unprocessed_and_no_permit_is_lost()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 10);
        var held = limiter.AttemptAcquire();
        var ran = false;
        await using var queue = new WorkQueue<string>(
            (_, _) =>
            {
                ran = true;
                return Task.CompletedTask;
            },
            new WorkQueueOptions<string> { Workers = 1, Limiter = limiter });
        await queue.EnqueueAsync("waiting");
        await limiter.Requested(1).WaitAsync(Patience);

        var result = await queue.CompleteAsync(new CancellationToken(canceled: true)).WaitAsync(Patience);

        Assert.Equal(["waiting"], result.Unprocessed);
        Assert.False(ran);
        held.Dispose();
        Assert.Equal(1, limiter.Available);
    }

    [Fact]
    public async Task A_permit_the_limiter_refuses_fails_the_item_and_the_handler_does_not_run()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 0);
        using var held = limiter.AttemptAcquire();
        var ran = false;
        var reported = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var queue = new WorkQueue<string>(
            (_, _) =>
            {
                ran = true;
                return Task.CompletedTask;
            },
            new WorkQueueOptions<string>
            {
                Workers = 1,
                Limiter = limiter,
                Name = "webhooks",
                OnError = (_, error) =>
                {
                    reported.TrySetResult(error);
                    return ValueTask.CompletedTask;
                },
            });

        await queue.EnqueueAsync("refused");
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        var (item, error) = Assert.Single(result.Failed);
        Assert.Equal("refused", item);
        Assert.IsType<PermitRejectedException>(error);
        Assert.Contains("'webhooks'", error.Message, StringComparison.Ordinal);
        Assert.Same(error, await reported.Task.WaitAsync(Patience));
        Assert.False(ran);
    }

    [Fact]
    public async Task A_handler_that_fails_or_is_still_running_gives_its_permit_back_when_it_ends()
    {
        await using var limiter = new ObservedLimiter(permits: 1, queueLimit: 10);
        var release = NewGate();
        var running = NewGate();
        await using var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                if (item == 1)
                {
                    running.SetResult();
                    await release.Task;
                    throw new InvalidOperationException("failed after a while");
                }
            },
            new WorkQueueOptions<int> { Workers = 2, Limiter = limiter });

        await queue.EnqueueAsync(1);
        await running.Task.WaitAsync(Patience);
        Assert.Equal(0, limiter.Available);
        await queue.EnqueueAsync(2);
        release.SetResult();
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(1, result.Completed);
        Assert.Equal(1, result.FailedCount);
        Assert.Equal(1, limiter.Available);
    }
}
