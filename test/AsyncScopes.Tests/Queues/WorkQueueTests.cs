using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Queues;

public sealed class WorkQueueTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static string NewName() => "queue-" + Guid.NewGuid().ToString("N");

    // Accepts the items 0 to count - 1, then completes the queue.
    private static async Task<WorkQueueResult<int>> CompleteWithItemsAsync(WorkQueue<int> queue, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        return await queue.CompleteAsync().WaitAsync(Patience);
    }

    // --- Failures -------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_handler_that_throws_does_not_stop_the_only_worker_from_taking_the_next_items()
    {
        var failure = new InvalidOperationException("the first item fails");
        var handled = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            (item, _) =>
            {
                handled.Enqueue(item);
                if (item == 0)
                {
                    throw failure; // synchronously, before the handler returns a task
                }

                return Task.CompletedTask;
            },
            new WorkQueueOptions<int> { Workers = 1 });

        for (int i = 0; i < 5; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, handled);
        Assert.Equal(4, result.Completed);
        var (item, error) = Assert.Single(result.Failed);
        Assert.Equal(0, item);
        Assert.Same(failure, error);
        Assert.Empty(result.Unprocessed);
    }

    [Fact]
    public async Task A_handler_that_throws_neither_cancels_nor_stops_the_handlers_running_on_other_workers()
    {
        var failure = new InvalidOperationException("item 1 fails");
        var longRunning = NewGate();
        var release = NewGate();
        var failed = NewGate();
        var lastStarted = NewGate();
        bool cancelledWhenReleased = true;
        var handled = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            async (item, token) =>
            {
                handled.Enqueue(item);
                if (item == 0)
                {
                    longRunning.TrySetResult();
                    await release.Task;
                    cancelledWhenReleased = token.IsCancellationRequested;
                    return;
                }

                if (item == 1)
                {
                    await longRunning.Task; // fails while item 0 runs on the other worker
                    throw failure;
                }

                if (item == 5)
                {
                    lastStarted.TrySetResult();
                    await release.Task;
                }
            },
            new WorkQueueOptions<int>
            {
                Workers = 2,
                OnError = (_, _) =>
                {
                    failed.TrySetResult();
                    return ValueTask.CompletedTask;
                },
            });
        Assert.True(queue.TryEnqueue(0));
        Assert.True(queue.TryEnqueue(1));
        await failed.Task.WaitAsync(Patience);

        // Item 0 is still running, uncancelled, and the worker of the failed item takes the next items.
        for (int i = 2; i < 6; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        await lastStarted.Task.WaitAsync(Patience); // items 2 to 4 went through the worker of the failed item
        Assert.Equal(new WorkQueueStatistics(0, 2, 3, 1), queue.Statistics);
        release.SetResult();
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.False(cancelledWhenReleased);
        Assert.Equal(5, result.Completed);
        var (item, error) = Assert.Single(result.Failed);
        Assert.Equal(1, item);
        Assert.Same(failure, error);
        Assert.Empty(result.Unprocessed);
        Assert.Equal(Enumerable.Range(0, 6), handled.Order());
    }

    [Fact]
    public async Task OnError_sees_every_failed_item_with_the_very_exception_its_handler_threw()
    {
        var thrown = new ConcurrentDictionary<int, Exception>();
        var reported = new ConcurrentQueue<(int Item, Exception Error)>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                await Task.Yield();
                if (item % 3 == 0)
                {
                    var failure = new InvalidOperationException($"item {item} fails");
                    thrown[item] = failure;
                    throw failure;
                }
            },
            new WorkQueueOptions<int>
            {
                Workers = 2,
                OnError = (item, error) =>
                {
                    reported.Enqueue((item, error));
                    return ValueTask.CompletedTask;
                },
            });

        for (int i = 0; i < 10; i++)
        {
            await queue.EnqueueAsync(i);
        }

        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(new[] { 0, 3, 6, 9 }, thrown.Keys.Order());
        Assert.Equal(thrown.Keys.Order(), reported.Select(r => r.Item).Order());
        foreach (var (item, error) in reported)
        {
            Assert.Same(thrown[item], error);
        }

        Assert.Equal(thrown.Keys.Order(), result.Failed.Select(f => f.Item).Order());
        foreach (var (item, error) in result.Failed)
        {
            Assert.Same(thrown[item], error);
        }

        Assert.Equal(6, result.Completed);
        Assert.Empty(result.Unprocessed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Only_the_last_failures_are_kept_while_the_count_and_OnError_see_every_one(int workers)
    {
        const int Items = 1_000;
        const int Kept = 10;
        var thrown = new ConcurrentDictionary<int, Exception>();
        var reported = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                if (item % 2 == 0)
                {
                    await Task.Yield(); // half fail asynchronously, half return a task that already failed
                }

                throw thrown[item] = new InvalidOperationException($"item {item} fails");
            },
            new WorkQueueOptions<int>
            {
                Workers = workers,
                MaxRetainedFailures = Kept,
                OnError = (item, _) =>
                {
                    reported.Enqueue(item);
                    return ValueTask.CompletedTask;
                },
            });

        var result = await CompleteWithItemsAsync(queue, Items);

        Assert.Equal(Kept, result.Failed.Select(failure => failure.Item).Distinct().Count());
        Assert.All(result.Failed, failure => Assert.Same(thrown[failure.Item], failure.Error));
        Assert.Equal(Items, result.FailedCount);
        Assert.Equal(Items, queue.Statistics.Failed);
        Assert.Equal(Enumerable.Range(0, Items), reported.Order());
        Assert.Equal(0, result.Completed);
        Assert.Empty(result.Unprocessed);
        if (workers == 1)
        {
            // One worker fails the items in the order they came: the last ones to fail are the last items.
            Assert.Equal(Enumerable.Range(Items - Kept, Kept), result.Failed.Select(failure => failure.Item));
        }
    }

    [Fact]
    public async Task MaxRetainedFailures_of_zero_keeps_no_failure_and_counts_them_all()
    {
        const int Items = 20;
        int reported = 0;
        var queue = new WorkQueue<int>(
            (item, _) => throw new InvalidOperationException($"item {item} fails"),
            new WorkQueueOptions<int>
            {
                Workers = 1,
                MaxRetainedFailures = 0,
                OnError = (_, _) =>
                {
                    reported++;
                    return ValueTask.CompletedTask;
                },
            });

        var result = await CompleteWithItemsAsync(queue, Items);

        Assert.Empty(result.Failed);
        Assert.Equal(Items, result.FailedCount);
        Assert.Equal(Items, reported);
    }

    [Fact]
    public async Task By_default_the_last_100_failures_are_kept()
    {
        const int Items = 150;
        var queue = new WorkQueue<int>(
            (item, _) => throw new InvalidOperationException($"item {item} fails"),
            new WorkQueueOptions<int> { Workers = 1 });

        var result = await CompleteWithItemsAsync(queue, Items);

        Assert.Equal(100, new WorkQueueOptions<int>().MaxRetainedFailures);
        Assert.Equal(Enumerable.Range(Items - 100, 100), result.Failed.Select(failure => failure.Item));
        Assert.Equal(Items, result.FailedCount);
    }

    [Fact]
    public async Task An_OnError_that_throws_leaves_the_item_failed_with_the_handler_exception_and_breaks_nothing()
    {
        string name = NewName();
        var handlerFailure = new InvalidOperationException("the handler fails");
        var onErrorFailure = new InvalidOperationException("the error callback fails too");
        var unobserved = new ConcurrentQueue<Exception>();
        void OnUnobserved(object? sender, UnobservedScopeFailureEventArgs e)
        {
            if (e.ScopeName == name)
            {
                unobserved.Enqueue(e.Exception);
            }
        }

        ScopeDiagnostics.UnobservedFailure += OnUnobserved;
        try
        {
            var queue = new WorkQueue<int>(
                (item, _) => item == 0 ? Task.FromException(handlerFailure) : Task.CompletedTask,
                new WorkQueueOptions<int>
                {
                    Workers = 1,
                    Name = name,
                    OnError = (_, _) => throw onErrorFailure,
                });

            for (int i = 0; i < 3; i++)
            {
                Assert.True(queue.TryEnqueue(i));
            }

            var result = await queue.CompleteAsync().WaitAsync(Patience);

            var (item, error) = Assert.Single(result.Failed);
            Assert.Equal(0, item);
            Assert.Same(handlerFailure, error);
            Assert.Equal(2, result.Completed);
            Assert.Empty(result.Unprocessed);
            Assert.Equal(new WorkQueueStatistics(0, 0, 2, 1), queue.Statistics);
            Assert.Same(onErrorFailure, Assert.Single(unobserved));
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= OnUnobserved;
        }
    }

    [Fact]
    public async Task A_handler_that_throws_OperationCanceledException_of_an_unrelated_token_is_a_failure()
    {
        using var unrelated = new CancellationTokenSource();
        unrelated.Cancel();
        OperationCanceledException? thrown = null;
        var queue = new WorkQueue<int>(
            (_, _) =>
            {
                thrown = new OperationCanceledException(unrelated.Token);
                return Task.FromException(thrown);
            },
            new WorkQueueOptions<int> { Workers = 1 });
        Assert.True(queue.TryEnqueue(7));

        var result = await queue.CompleteAsync().WaitAsync(Patience);

        var (item, error) = Assert.Single(result.Failed);
        Assert.Equal(7, item);
        Assert.NotNull(thrown);
        Assert.Same(thrown, error);
        Assert.Equal(0, result.Completed);
        Assert.Empty(result.Unprocessed);
        Assert.Equal(1, queue.Statistics.Failed);
    }

    [Fact]
    public async Task Every_way_a_handler_can_end_is_counted_once_and_the_worker_goes_on_to_the_next_item()
    {
        // One worker, so the items run in order: item i ends the way outcomes[i % 6] says.
        using var unrelated = new CancellationTokenSource();
        unrelated.Cancel();
        var thrown = new ConcurrentDictionary<int, Exception>();
        var handled = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            (item, _) =>
            {
                handled.Enqueue(item);
                switch (item % 6)
                {
                    case 0:
                        return Task.CompletedTask; // completed before the handler returns
                    case 1:
                        return CompleteLaterAsync();
                    case 2:
                        throw thrown[item] = new InvalidOperationException($"item {item} throws synchronously");
                    case 3:
                        return Task.FromException(thrown[item] = new InvalidOperationException($"item {item} returns a faulted task"));
                    case 4:
                        return Task.FromCanceled(unrelated.Token); // cancelled, but not by the queue: a failure
                    default:
                        return null!; // a broken handler: a failure, not the end of its worker
                }
            },
            new WorkQueueOptions<int> { Workers = 1 });
        const int Items = 60;
        for (int i = 0; i < Items; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(Enumerable.Range(0, Items), handled);
        Assert.Equal(Items / 3, result.Completed);
        Assert.Empty(result.Unprocessed);
        Assert.Equal(Enumerable.Range(0, Items).Where(i => i % 6 >= 2), result.Failed.Select(failure => failure.Item).Order());
        foreach (var (item, error) in result.Failed)
        {
            switch (item % 6)
            {
                case 2 or 3:
                    Assert.Same(thrown[item], error);
                    break;
                case 4:
                    Assert.Equal(unrelated.Token, Assert.IsAssignableFrom<OperationCanceledException>(error).CancellationToken);
                    break;
                default:
                    Assert.IsType<NullReferenceException>(error);
                    break;
            }
        }

        Assert.Equal(new WorkQueueStatistics(0, 0, Items / 3, Items * 2 / 3), queue.Statistics);

        static async Task CompleteLaterAsync() => await Task.Yield();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_handler_that_ends_cancelled_by_the_queue_stop_before_returning_leaves_its_item_unprocessed(bool throwsSynchronously)
    {
        var release = NewGate();
        using var queueCancellation = new CancellationTokenSource();
        var queue = new WorkQueue<int>(
            (item, stop) =>
            {
                if (item == 0)
                {
                    return release.Task;
                }

                // Stops the queue from inside the handler: its token is cancelled before it returns.
                queueCancellation.Cancel();
                if (throwsSynchronously)
                {
                    stop.ThrowIfCancellationRequested();
                }

                return Task.FromCanceled(stop);
            },
            new WorkQueueOptions<int> { Workers = 1 },
            queueCancellation.Token);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        release.SetResult();
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(1, result.Completed);
        Assert.Empty(result.Failed);
        Assert.Equal(new[] { 1, 2 }, result.Unprocessed.Order());
        Assert.Equal(new WorkQueueStatistics(0, 0, 1, 0), queue.Statistics);
    }

    // --- Capacity and enqueueing ------------------------------------------------------------------------------------

    [Fact]
    public async Task With_a_bounded_capacity_EnqueueAsync_waits_until_a_handler_takes_an_item()
    {
        var started = new ConcurrentDictionary<int, TaskCompletionSource>();
        var gates = new ConcurrentDictionary<int, TaskCompletionSource>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                started.GetOrAdd(item, _ => NewGate()).TrySetResult();
                await gates.GetOrAdd(item, _ => NewGate()).Task;
            },
            new WorkQueueOptions<int> { Workers = 1, Capacity = 1 });

        await queue.EnqueueAsync(0);
        await started.GetOrAdd(0, _ => NewGate()).Task.WaitAsync(Patience); // the worker holds item 0
        await queue.EnqueueAsync(1); // fills the only place

        var waiting = queue.EnqueueAsync(2).AsTask();
        Assert.False(waiting.IsCompleted);
        Assert.Equal(new WorkQueueStatistics(1, 1, 0, 0), queue.Statistics);

        gates.GetOrAdd(0, _ => NewGate()).TrySetResult(); // item 0 ends: the worker takes item 1, making room
        await waiting.WaitAsync(Patience);
        await started.GetOrAdd(1, _ => NewGate()).Task.WaitAsync(Patience);
        Assert.Equal(new WorkQueueStatistics(1, 1, 1, 0), queue.Statistics);

        gates.GetOrAdd(1, _ => NewGate()).TrySetResult();
        gates.GetOrAdd(2, _ => NewGate()).TrySetResult();
        var result = await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(3, result.Completed);
        Assert.Empty(result.Failed);
        Assert.Empty(result.Unprocessed);
    }

    [Fact]
    public async Task With_a_bounded_capacity_TryEnqueue_returns_false_when_the_queue_is_full()
    {
        var running = NewGate();
        var release = NewGate();
        var handled = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                handled.Enqueue(item);
                running.TrySetResult();
                await release.Task;
            },
            new WorkQueueOptions<int> { Workers = 1, Capacity = 2 });

        Assert.True(queue.TryEnqueue(0));
        await running.Task.WaitAsync(Patience);
        Assert.True(queue.TryEnqueue(1));
        Assert.True(queue.TryEnqueue(2));

        Assert.False(queue.TryEnqueue(3));
        Assert.Equal(2, queue.Statistics.Pending);

        release.SetResult();
        var result = await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(3, result.Completed);
        Assert.Equal(new[] { 0, 1, 2 }, handled);
    }

    [Fact]
    public async Task Enqueueing_after_completion_started_throws_InvalidOperationException_and_TryEnqueue_returns_false()
    {
        var running = NewGate();
        var release = NewGate();
        var handled = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                handled.Enqueue(item);
                running.TrySetResult();
                await release.Task;
            },
            new WorkQueueOptions<int> { Workers = 1 });
        await queue.EnqueueAsync(0);
        await running.Task.WaitAsync(Patience);

        var completion = queue.CompleteAsync(); // started, not finished: item 0 is still running
        Assert.False(completion.IsCompleted);

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await queue.EnqueueAsync(1));
        Assert.False(queue.TryEnqueue(2));

        release.SetResult();
        var result = await completion.WaitAsync(Patience);

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await queue.EnqueueAsync(3));
        Assert.False(queue.TryEnqueue(4));
        Assert.Equal(new[] { 0 }, handled);
        Assert.Equal(1, result.Completed);
        Assert.Empty(result.Failed);
        Assert.Empty(result.Unprocessed);
    }

    [Fact]
    public async Task An_EnqueueAsync_waiting_for_room_when_completion_starts_throws_InvalidOperationException_and_its_item_is_not_accepted()
    {
        var running = NewGate();
        var release = NewGate();
        var handled = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                handled.Enqueue(item);
                running.TrySetResult();
                await release.Task;
            },
            new WorkQueueOptions<int> { Workers = 1, Capacity = 1 });
        await queue.EnqueueAsync(0);
        await running.Task.WaitAsync(Patience);
        await queue.EnqueueAsync(1);
        var waiting = queue.EnqueueAsync(2).AsTask();
        Assert.False(waiting.IsCompleted);

        var completion = queue.CompleteAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(() => waiting.WaitAsync(Patience));
        release.SetResult();
        var result = await completion.WaitAsync(Patience);
        Assert.Equal(new[] { 0, 1 }, handled);
        Assert.Equal(2, result.Completed);
        Assert.Empty(result.Failed);
        Assert.Empty(result.Unprocessed);
    }

    [Fact]
    public async Task EnqueueAsync_throws_at_the_call_once_completion_has_started()
    {
        var queue = new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Workers = 1, Capacity = 1 });
        var completion = queue.CompleteAsync();

        // Thrown by the call itself, not through the ValueTask it would return: the item was never accepted.
        Action enqueue = () => queue.EnqueueAsync(1).AsTask();
        Assert.Throws<InvalidOperationException>(enqueue);

        var result = await completion.WaitAsync(Patience);
        Assert.Equal(0, result.Completed);
        Assert.Empty(result.Unprocessed);
    }

    [Fact]
    public async Task Two_EnqueueAsync_woken_by_one_free_place_take_it_in_turn_and_the_other_waits_for_the_next()
    {
        var started = new ConcurrentDictionary<int, TaskCompletionSource>();
        var release = new ConcurrentDictionary<int, TaskCompletionSource>();
        var handled = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                handled.Enqueue(item);
                started.GetOrAdd(item, _ => NewGate()).TrySetResult();
                await release.GetOrAdd(item, _ => NewGate()).Task;
            },
            new WorkQueueOptions<int> { Workers = 1, Capacity = 1 });
        await queue.EnqueueAsync(0);
        await started.GetOrAdd(0, _ => NewGate()).Task.WaitAsync(Patience); // 0 runs
        await queue.EnqueueAsync(1); // 1 fills the only place
        var second = queue.EnqueueAsync(2).AsTask();
        var third = queue.EnqueueAsync(3).AsTask();
        Assert.False(second.IsCompleted);
        Assert.False(third.IsCompleted);

        release.GetOrAdd(0, _ => NewGate()).SetResult(); // the worker takes 1: one place is free, and both are woken
        var accepted = await Task.WhenAny(second, third).WaitAsync(Patience);
        await accepted;
        var other = accepted == second ? third : second;
        await started.GetOrAdd(1, _ => NewGate()).Task.WaitAsync(Patience);
        Assert.False(other.IsCompleted); // no place is left until 1 ends: the other waits again, and is not refused

        release.GetOrAdd(1, _ => NewGate()).SetResult();
        await other.WaitAsync(Patience);
        int first = accepted == second ? 2 : 3;
        await started.GetOrAdd(first, _ => NewGate()).Task.WaitAsync(Patience);
        release.GetOrAdd(first, _ => NewGate()).SetResult();
        release.GetOrAdd(5 - first, _ => NewGate()).SetResult();
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(new[] { 0, 1, first, 5 - first }, handled);
        Assert.Equal(4, result.Completed);
    }

    // --- Workers and statistics ---------------------------------------------------------------------------------------

    [Fact]
    public async Task Workers_bounds_how_many_handlers_run_at_once_and_the_bound_is_reached()
    {
        const int Workers = 3;
        const int Items = 40;
        int current = 0;
        int max = 0;
        var allWorkersBusy = NewGate();
        var queue = new WorkQueue<int>(
            async (_, _) =>
            {
                int now = Interlocked.Increment(ref current);
                int seen;
                while (now > (seen = Volatile.Read(ref max)) && Interlocked.CompareExchange(ref max, now, seen) != seen)
                {
                }

                if (now == Workers)
                {
                    allWorkersBusy.TrySetResult();
                }

                await allWorkersBusy.Task; // the first handlers hold their worker until all workers are busy
                await Task.Yield();
                Interlocked.Decrement(ref current);
            },
            new WorkQueueOptions<int> { Workers = Workers });

        for (int i = 0; i < Items; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.True(allWorkersBusy.Task.IsCompleted);
        Assert.Equal(Workers, Volatile.Read(ref max));
        Assert.Equal(Items, result.Completed);
    }

    [Fact]
    public async Task Statistics_count_pending_running_completed_and_failed_items_at_each_step()
    {
        var started = new ConcurrentDictionary<string, TaskCompletionSource>();
        var gates = new ConcurrentDictionary<string, TaskCompletionSource>();
        TaskCompletionSource Started(string item) => started.GetOrAdd(item, _ => NewGate());
        TaskCompletionSource Gate(string item) => gates.GetOrAdd(item, _ => NewGate());
        var failure = new InvalidOperationException("B fails");
        var queue = new WorkQueue<string>(
            async (item, _) =>
            {
                Started(item).TrySetResult();
                await Gate(item).Task;
                if (item == "B")
                {
                    throw failure;
                }
            },
            new WorkQueueOptions<string> { Workers = 2 });

        Assert.Equal(new WorkQueueStatistics(0, 0, 0, 0), queue.Statistics);
        foreach (var item in new[] { "A", "B", "C", "D" })
        {
            await queue.EnqueueAsync(item);
        }

        await Started("A").Task.WaitAsync(Patience);
        await Started("B").Task.WaitAsync(Patience);
        Assert.Equal(new WorkQueueStatistics(2, 2, 0, 0), queue.Statistics);

        Gate("A").SetResult(); // A completes; its worker takes C
        await Started("C").Task.WaitAsync(Patience);
        Assert.Equal(new WorkQueueStatistics(1, 2, 1, 0), queue.Statistics);

        Gate("B").SetResult(); // B fails; its worker takes D
        await Started("D").Task.WaitAsync(Patience);
        Assert.Equal(new WorkQueueStatistics(0, 2, 1, 1), queue.Statistics);

        Gate("C").SetResult();
        Gate("D").SetResult();
        var result = await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(new WorkQueueStatistics(0, 0, 3, 1), queue.Statistics);
        Assert.Equal(3, result.Completed);
        var (failedItem, error) = Assert.Single(result.Failed);
        Assert.Equal("B", failedItem);
        Assert.Same(failure, error);
    }

    // --- Completion and cancellation ----------------------------------------------------------------------------------

    [Fact]
    public async Task Cancelling_the_CompleteAsync_token_cancels_running_handlers_and_returns_their_items_and_the_pending_ones_as_unprocessed()
    {
        var started = new ConcurrentDictionary<int, TaskCompletionSource>();
        var sawCancellation = new ConcurrentQueue<int>();
        var handled = new ConcurrentQueue<int>();
        TaskCompletionSource Started(int item) => started.GetOrAdd(item, _ => NewGate());
        var queue = new WorkQueue<int>(
            async (item, token) =>
            {
                handled.Enqueue(item);
                Started(item).TrySetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, token); // ends only by cancellation
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    sawCancellation.Enqueue(item);
                    throw;
                }
            },
            new WorkQueueOptions<int> { Workers = 2 });
        for (int i = 0; i < 6; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        await Started(0).Task.WaitAsync(Patience);
        await Started(1).Task.WaitAsync(Patience);
        using var cancel = new CancellationTokenSource();
        var completion = queue.CompleteAsync(cancel.Token);
        Assert.False(completion.IsCompleted);

        await cancel.CancelAsync();
        var result = await completion.WaitAsync(Patience);

        Assert.True(completion.IsCompletedSuccessfully);
        Assert.Equal(new[] { 0, 1 }, sawCancellation.Order());
        Assert.Equal(new[] { 0, 1 }, handled.Order());
        Assert.Equal(Enumerable.Range(0, 6), result.Unprocessed.Order());
        Assert.Equal(0, result.Completed);
        Assert.Empty(result.Failed);
        Assert.Equal(new WorkQueueStatistics(0, 0, 0, 0), queue.Statistics);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task Stopping_the_queue_by_its_token_ends_the_workers_that_wait_for_items(int busyItems)
    {
        // Four workers; busyItems of them run a handler that ends only when cancelled, the others have nothing to do.
        var started = NewGate();
        var never = NewGate();
        using var stop = new CancellationTokenSource();
        var queue = new WorkQueue<int>(
            async (_, token) =>
            {
                started.TrySetResult();
                await never.Task.WaitAsync(token);
            },
            new WorkQueueOptions<int> { Workers = 4 },
            stop.Token);
        for (int i = 0; i < busyItems; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        if (busyItems > 0)
        {
            await started.Task.WaitAsync(Patience);
        }

        await stop.CancelAsync();
        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(Enumerable.Range(0, busyItems), result.Unprocessed);
        Assert.Equal(0, result.Completed);
        Assert.Empty(result.Failed);
        Assert.Equal(new WorkQueueStatistics(0, 0, 0, 0), queue.Statistics);
        Assert.False(queue.TryEnqueue(99));
    }

    [Fact]
    public async Task CompleteAsync_returns_the_same_task_on_every_call()
    {
        var release = NewGate();
        var queue = new WorkQueue<int>((_, _) => release.Task, new WorkQueueOptions<int> { Workers = 1 });
        Assert.True(queue.TryEnqueue(1));
        using var cancel = new CancellationTokenSource();

        var first = queue.CompleteAsync();
        var second = queue.CompleteAsync(cancel.Token);
        Assert.Same(first, second);

        release.SetResult();
        var result = await first.WaitAsync(Patience);
        Assert.Same(first, queue.CompleteAsync());
        Assert.Same(result, await queue.CompleteAsync());
        Assert.Equal(1, result.Completed);
    }

    [Fact]
    public async Task Cancelling_the_queue_token_stops_the_queue_and_a_later_CompleteAsync_reports_what_was_left_unprocessed()
    {
        using var stop = new CancellationTokenSource();
        var running = NewGate();
        var sawCancellation = NewGate();
        var queue = new WorkQueue<int>(
            async (item, token) =>
            {
                running.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, token);
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    sawCancellation.TrySetResult();
                    throw;
                }
            },
            new WorkQueueOptions<int> { Workers = 1 },
            stop.Token);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        await running.Task.WaitAsync(Patience);

        await stop.CancelAsync();
        await sawCancellation.Task.WaitAsync(Patience);
        Assert.False(queue.TryEnqueue(3));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await queue.EnqueueAsync(4));

        var result = await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(new[] { 0, 1, 2 }, result.Unprocessed.Order());
        Assert.Equal(0, result.Completed);
        Assert.Empty(result.Failed);
    }

    [Fact]
    public async Task DisposeAsync_waits_for_the_drain_timeout_then_cancels_the_running_handler()
    {
        var time = new FakeTimeProvider();
        var drainTimeout = TimeSpan.FromSeconds(10);
        var running = NewGate();
        var sawCancellation = NewGate();
        var queue = new WorkQueue<int>(
            async (item, token) =>
            {
                running.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, token);
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    sawCancellation.TrySetResult();
                    throw;
                }
            },
            new WorkQueueOptions<int> { Workers = 1, DrainTimeout = drainTimeout, TimeProvider = time });
        Assert.True(queue.TryEnqueue(1));
        Assert.True(queue.TryEnqueue(2));
        await running.Task.WaitAsync(Patience);

        var disposal = queue.DisposeAsync().AsTask();
        Assert.False(disposal.IsCompleted);

        time.Advance(drainTimeout - TimeSpan.FromTicks(1));
        Assert.False(disposal.IsCompleted);
        Assert.False(sawCancellation.Task.IsCompleted);

        time.Advance(TimeSpan.FromTicks(1));
        await disposal.WaitAsync(Patience);
        Assert.True(sawCancellation.Task.IsCompleted);

        var result = await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(new[] { 1, 2 }, result.Unprocessed.Order());
        Assert.Equal(0, result.Completed);
        Assert.Empty(result.Failed);
    }

    [Fact]
    public async Task DisposeAsync_lets_handlers_that_finish_within_the_drain_timeout_complete_uncancelled()
    {
        var time = new FakeTimeProvider();
        var running = NewGate();
        var release = NewGate();
        bool cancelledAtEnd = true;
        var queue = new WorkQueue<int>(
            async (item, token) =>
            {
                running.TrySetResult();
                await release.Task;
                cancelledAtEnd = token.IsCancellationRequested;
            },
            new WorkQueueOptions<int> { Workers = 1, DrainTimeout = TimeSpan.FromSeconds(10), TimeProvider = time });
        Assert.True(queue.TryEnqueue(1));
        await running.Task.WaitAsync(Patience);

        var disposal = queue.DisposeAsync().AsTask();
        Assert.False(disposal.IsCompleted);
        release.SetResult();
        await disposal.WaitAsync(Patience);

        Assert.False(cancelledAtEnd);
        var result = await queue.CompleteAsync().WaitAsync(Patience);
        Assert.Equal(1, result.Completed);
        Assert.Empty(result.Unprocessed);
    }

    // --- Arguments ------------------------------------------------------------------------------------------------------

    [Fact]
    public void A_null_handler_throws_ArgumentNullException()
    {
        var thrown = Assert.Throws<ArgumentNullException>(() => new WorkQueue<int>(null!));
        Assert.Equal("handler", thrown.ParamName);
    }

    [Fact]
    public void Zero_workers_are_rejected_at_construction()
    {
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(
            () => new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Workers = 0 }));
        Assert.Equal("Workers", thrown.ParamName);
    }

    [Fact]
    public void A_negative_capacity_is_rejected_at_construction()
    {
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(
            () => new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Capacity = -1 }));
        Assert.Equal("Capacity", thrown.ParamName);
    }

    [Fact]
    public void A_negative_MaxRetainedFailures_is_rejected_at_construction()
    {
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(
            () => new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { MaxRetainedFailures = -1 }));
        Assert.Equal("MaxRetainedFailures", thrown.ParamName);
        Assert.Equal(-1, thrown.ActualValue);
    }

    [Fact]
    public void A_negative_drain_timeout_is_rejected_at_construction()
    {
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(
            () => new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { DrainTimeout = TimeSpan.FromSeconds(-1) }));
        Assert.Equal("DrainTimeout", thrown.ParamName);
    }

    [Fact]
    public void An_infinite_drain_timeout_is_rejected_at_construction()
    {
        // DisposeAsync must end: a drain without a bound would wait for a handler that never ends.
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(
            () => new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { DrainTimeout = Timeout.InfiniteTimeSpan }));
        Assert.Equal("DrainTimeout", thrown.ParamName);
    }

    [Fact]
    public void A_null_TimeProvider_is_rejected_at_construction()
    {
        var thrown = Assert.Throws<ArgumentException>(
            () => new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { TimeProvider = null! }));
        Assert.Equal("TimeProvider", thrown.ParamName);
    }

    // --- Lifetime -------------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_completed_queue_is_not_kept_alive_by_the_token_it_was_created_with()
    {
        using var lifetime = new CancellationTokenSource(); // outlives the queue, as an application's stopping token does
        var queue = await CreateAndCompleteAsync(lifetime.Token);

        for (int attempt = 0; attempt < 10 && IsAlive(queue); attempt++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
        }

        Assert.False(IsAlive(queue), "the token's registration still holds the completed queue");
    }

    // Apart, so that no reference to the target is left in the test's own frame.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static bool IsAlive(WeakReference<WorkQueue<int>> queue) => queue.TryGetTarget(out _);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static async Task<WeakReference<WorkQueue<int>>> CreateAndCompleteAsync(CancellationToken token)
    {
        var queue = new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Workers = 1 }, token);
        Assert.True(queue.TryEnqueue(1));
        await queue.CompleteAsync(CancellationToken.None).WaitAsync(Patience, CancellationToken.None);
        return new WeakReference<WorkQueue<int>>(queue);
    }
}
