using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Queues;

public sealed class WorkQueueStressTests
{
    private const int Items = 2_000;
    private const int Workers = 4;

    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly int[] Seeds = [1, 7, 42, 1234, 98765];

    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    /// <summary>What cuts the drain short, mid-work.</summary>
    public enum CutShortBy
    {
        /// <summary>The token given to <c>CompleteAsync</c> is cancelled.</summary>
        CompleteAsyncToken,

        /// <summary><c>DisposeAsync</c>'s drain deadline fires: the fake clock reaches <c>DrainTimeout</c>.</summary>
        DrainDeadline,
    }

    private enum Behavior
    {
        CompleteSynchronously,
        CompleteAfterYields,
        FailSynchronously,
        FailAfterYields,
        WaitForCancellation,
    }

    [Theory]
    [InlineData(CutShortBy.CompleteAsyncToken)]
    [InlineData(CutShortBy.DrainDeadline)]
    public async Task Every_accepted_item_is_completed_failed_or_unprocessed_exactly_once_when_the_drain_is_cut_short_mid_work(CutShortBy cutShortBy)
    {
        var totals = new int[3];
        foreach (int seed in Seeds)
        {
            var (completed, failed, unprocessed) = await RunAsync(seed, cutShortBy);
            totals[0] += completed;
            totals[1] += failed;
            totals[2] += unprocessed;
        }

        // The runs must reach every outcome, or the property says little.
        Assert.True(totals[0] > 0 && totals[1] > 0 && totals[2] > 0, $"completed {totals[0]}, failed {totals[1]}, unprocessed {totals[2]}");
    }

    private static async Task<(int Completed, int Failed, int Unprocessed)> RunAsync(int seed, CutShortBy cutShortBy)
    {
        var random = new Random(seed);
        var behaviors = new Behavior[Items];
        var yields = new int[Items];
        for (int i = 0; i < Items; i++)
        {
            int roll = random.Next(1000);
            behaviors[i] = roll switch
            {
                < 50 => Behavior.FailSynchronously,      // 5 %
                < 100 => Behavior.FailAfterYields,       // 5 %
                < 103 => Behavior.WaitForCancellation,   // 0.3 %: each one holds a worker until the drain is cancelled
                < 550 => Behavior.CompleteSynchronously,
                _ => Behavior.CompleteAfterYields,
            };
            yields[i] = random.Next(1, 5);
        }

        // The drain is cut short from inside a handler, once this many items finished (or once every worker is held by
        // an item that only cancellation ends): mid-work, whatever the timing.
        int cancelAfter = random.Next(200, 1_800);

        using var drain = new CancellationTokenSource();
        var time = new FakeTimeProvider();
        int cutShort = 0;
        void CutShort()
        {
            if (Interlocked.Exchange(ref cutShort, 1) == 1)
            {
                return;
            }

            if (cutShortBy == CutShortBy.CompleteAsyncToken)
            {
                drain.Cancel();
            }
            else
            {
                time.Advance(DrainTimeout); // the deadline's timer fires here, on this handler's thread
            }
        }

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var completedItems = new ConcurrentDictionary<int, bool>();
        var thrown = new ConcurrentDictionary<int, Exception>();
        var cancelledItems = new ConcurrentDictionary<int, bool>();
        var startCounts = new int[Items];
        int finished = 0;
        int held = 0;

        void Finished()
        {
            if (Interlocked.Increment(ref finished) == cancelAfter)
            {
                CutShort();
            }
        }

        async Task HandleAsync(int item, CancellationToken token)
        {
            Interlocked.Increment(ref startCounts[item]);
            if (!go.Task.IsCompleted)
            {
                await go.Task;
            }

            switch (behaviors[item])
            {
                case Behavior.CompleteSynchronously:
                    completedItems[item] = true;
                    Finished();
                    return;
                case Behavior.CompleteAfterYields:
                    for (int y = 0; y < yields[item]; y++)
                    {
                        await Task.Yield();
                    }

                    completedItems[item] = true;
                    Finished();
                    return;
                case Behavior.FailSynchronously:
                    throw Fail(item);
                case Behavior.FailAfterYields:
                    for (int y = 0; y < yields[item]; y++)
                    {
                        await Task.Yield();
                    }

                    throw Fail(item);
                default:
                    if (Interlocked.Increment(ref held) >= Workers)
                    {
                        CutShort();
                    }

                    try
                    {
                        await Task.Delay(Timeout.Infinite, token);
                    }
                    catch (OperationCanceledException) when (token.IsCancellationRequested)
                    {
                        cancelledItems[item] = true;
                        throw;
                    }

                    throw new InvalidOperationException("unreachable: an infinite delay ended without cancellation");
            }
        }

        Exception Fail(int item)
        {
            var failure = new InvalidOperationException($"seed {seed}: item {item} fails");
            thrown[item] = failure;
            Finished();
            return failure;
        }

        var queue = new WorkQueue<int>(
            HandleAsync,
            // Every failure kept, so that each one can be checked against what its handler threw.
            new WorkQueueOptions<int> { Workers = Workers, DrainTimeout = DrainTimeout, TimeProvider = time, MaxRetainedFailures = Items });
        for (int i = 0; i < Items; i++)
        {
            Assert.True(queue.TryEnqueue(i), $"seed {seed}: item {i} was refused");
        }

        Task<WorkQueueResult<int>> completion;
        Task disposal;
        if (cutShortBy == CutShortBy.CompleteAsyncToken)
        {
            completion = queue.CompleteAsync(drain.Token);
            disposal = Task.CompletedTask;
        }
        else
        {
            disposal = queue.DisposeAsync().AsTask(); // starts the drain, its deadline DrainTimeout away on the fake clock
            completion = queue.CompleteAsync();       // the same completion: its result
        }

        go.SetResult();
        var result = await completion.WaitAsync(Patience);
        await disposal.WaitAsync(Patience);

        string where = $"{cutShortBy}, seed {seed}, cut short after {cancelAfter}";
        Assert.True(Volatile.Read(ref cutShort) == 1, $"{where}: the drain was never cut short");

        // Each item ran at most once.
        Assert.True(startCounts.All(c => c <= 1), $"{where}: an item ran twice");

        // Counts add up.
        Assert.True(result.FailedCount == result.Failed.Count, $"{where}: {result.FailedCount} failed, {result.Failed.Count} kept");
        Assert.True(
            result.Completed + result.FailedCount + result.Unprocessed.Count == Items,
            $"{where}: completed {result.Completed} + failed {result.FailedCount} + unprocessed {result.Unprocessed.Count} != {Items}");

        // The sets are disjoint, without duplicates, and their union is exactly the accepted items.
        var failedItems = result.Failed.Select(f => f.Item).ToList();
        var unprocessedItems = result.Unprocessed.ToList();
        Assert.True(failedItems.Distinct().Count() == failedItems.Count, $"{where}: an item failed twice");
        Assert.True(unprocessedItems.Distinct().Count() == unprocessedItems.Count, $"{where}: an item is unprocessed twice");
        Assert.True(result.Completed == completedItems.Count, $"{where}: {result.Completed} completed, {completedItems.Count} handlers returned");
        var union = new HashSet<int>(completedItems.Keys);
        Assert.True(failedItems.All(union.Add), $"{where}: a failed item also completed");
        Assert.True(unprocessedItems.All(union.Add), $"{where}: an unprocessed item also completed or failed");
        Assert.True(union.SetEquals(Enumerable.Range(0, Items)), $"{where}: the outcomes are not exactly the accepted items");

        // Every outcome is the true one: failures carry the handler's exception; items that ran until cancelled are
        // unprocessed, as is everything that never started.
        Assert.True(thrown.Keys.Order().SequenceEqual(failedItems.Order()), $"{where}: the failed items are not those that threw");
        Assert.True(result.Failed.All(f => ReferenceEquals(thrown[f.Item], f.Error)), $"{where}: a failure lost its exception");
        var unprocessedSet = unprocessedItems.ToHashSet();
        Assert.True(cancelledItems.Keys.All(unprocessedSet.Contains), $"{where}: a cancelled item is not unprocessed");
        Assert.True(
            unprocessedItems.All(i => startCounts[i] == 0 || cancelledItems.ContainsKey(i)),
            $"{where}: an unprocessed item had run to its end");

        // The drain was cancelled mid-work: items were left.
        Assert.True(unprocessedItems.Count > 0, $"{where}: nothing was left unprocessed");
        Assert.True(queue.Statistics == new WorkQueueStatistics(0, 0, result.Completed, result.FailedCount), $"{where}: {queue.Statistics}");

        return ((int)result.Completed, result.Failed.Count, unprocessedItems.Count);
    }
}
