using AsyncScopes.Tests.Support;

namespace AsyncScopes.Tests.Queues;

/// <summary>
/// The queue never resumes on a <see cref="SynchronizationContext"/>: not on the context of a caller that enqueues,
/// completes or disposes it, and not on one that a handler or <see cref="WorkQueueOptions{T}.OnError"/> left current
/// on a worker's thread (see <see cref="CallerContext"/>).
/// </summary>
public sealed class WorkQueueCallerContextTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly CallerContext _caller = new();

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    [Fact]
    public async Task An_EnqueueAsync_that_waits_for_room_resumes_without_the_callers_context()
    {
        var running = NewGate();
        var release = new TaskCompletionSource(); // its continuation runs inline, in the step that completes it
        var queue = new WorkQueue<int>(
            async (_, _) =>
            {
                running.TrySetResult();
                await release.Task.ConfigureAwait(false);
            },
            new WorkQueueOptions<int> { Workers = 1, Capacity = 1 });
        await queue.EnqueueAsync(0);
        await running.Task.WaitAsync(Patience);
        await queue.EnqueueAsync(1); // the only place is taken
        Task waiting = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a caller on a UI thread
                waiting = queue.EnqueueAsync(2).AsTask();
            },
            release.SetResult); // 0 ends and the worker takes 1: there is room for 2

        await waiting.WaitAsync(Patience);
        var result = await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(3, result.Completed);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task DisposeAsync_from_a_callers_context_runs_the_whole_completion_without_it()
    {
        var running = NewGate();
        var release = new TaskCompletionSource();
        var queue = new WorkQueue<int>(
            async (_, _) =>
            {
                running.TrySetResult();
                await release.Task.ConfigureAwait(false);
            },
            new WorkQueueOptions<int> { Workers = 1 });
        Assert.True(queue.TryEnqueue(0));
        await running.Task.WaitAsync(Patience);
        Task disposal = Task.CompletedTask;

        await CallerContext.RunStepsAsync(
            () =>
            {
                _caller.MakeCurrent(); // a caller on a UI thread, which may block on the disposal
                disposal = queue.DisposeAsync().AsTask();
            },
            release.SetResult);

        await disposal.WaitAsync(Patience);
        Assert.Equal(1, queue.Statistics.Completed);
        Assert.Equal(0, _caller.Posts);
    }

    [Fact]
    public async Task A_worker_never_resumes_on_a_context_that_a_handler_or_OnError_left_current()
    {
        var failure = new InvalidOperationException("item 0 fails");
        var reporting = new TaskCompletionSource(); // OnError of item 0; continuations inline, in the step that completes it
        var handling = new TaskCompletionSource(); // the handler of item 1
        var onErrorStarted = NewGate();
        var handlerStarted = NewGate();
        var thirdHandled = NewGate();
        var queue = new WorkQueue<int>(
            (item, _) =>
            {
                switch (item)
                {
                    case 0:
                        _caller.MakeCurrent(); // fails at once, and the context is left current while it is reported
                        throw failure;
                    case 1:
                        handlerStarted.TrySetResult();
                        return _caller.Pending(handling.Task); // still running, and the context is left current
                    case 2:
                        _caller.MakeCurrent(); // done, and the context is left current while the worker waits for 3
                        thirdHandled.TrySetResult();
                        return Task.CompletedTask;
                    default:
                        return Task.CompletedTask;
                }
            },
            new WorkQueueOptions<int>
            {
                Workers = 1,
                OnError = (_, _) =>
                {
                    onErrorStarted.TrySetResult();
                    return new ValueTask(_caller.Pending(reporting.Task));
                },
            });

        Assert.True(queue.TryEnqueue(0));
        await onErrorStarted.Task.WaitAsync(Patience);
        await CallerContext.RunStepsAsync(reporting.SetResult);
        Assert.True(queue.TryEnqueue(1));
        await handlerStarted.Task.WaitAsync(Patience);
        await CallerContext.RunStepsAsync(handling.SetResult);
        Assert.True(queue.TryEnqueue(2));
        await thirdHandled.Task.WaitAsync(Patience);
        Assert.True(queue.TryEnqueue(3)); // wakes the worker, which waits for an item with the context still current
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(3, result.Completed);
        var (item, error) = Assert.Single(result.Failed);
        Assert.Equal(0, item);
        Assert.Same(failure, error);
        Assert.Equal(0, _caller.Posts);
    }
}
