using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Diagnostics;

// Every instrument here is tagged with the pool's or queue's name: each test reads only its own unique name, so these
// tests may run alongside any other.
public sealed class PoolAndQueueInstrumentTests
{
    private const string PoolTag = "asyncscopes.pool.name";
    private const string QueueTag = "asyncscopes.queue.name";

    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static string NewName() => "instrumented-" + Guid.NewGuid().ToString("N");

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static Func<object, CancellationToken, ValueTask<bool>>? ValidateIf(bool validates) =>
        validates ? static (_, _) => ValueTask.FromResult(true) : null;

    private static double Gauge(IReadOnlyList<RecordedMeasurement> observed, string instrument, string tag, string name) =>
        Assert.Single(observed, m => m.Has(instrument, tag, name)).Value;

    [Fact]
    public void The_recorder_listens_only_to_the_AsyncScopes_meter()
    {
        using var other = new System.Diagnostics.Metrics.Meter("AsyncScopes.Tests.NotTheLibrary");
        var counter = other.CreateCounter<long>("not.asyncscopes");
        using var recorder = new MetricsRecorder();

        counter.Add(1);

        Assert.DoesNotContain(recorder.Measurements, m => m.Instrument == "not.asyncscopes");
    }

    [Fact]
    public async Task Pool_gauges_report_size_in_use_idle_and_waiters_under_the_pool_name()
    {
        string name = NewName();
        using var recorder = new MetricsRecorder();
        var pool = new AsyncPool<object>(_ => ValueTask.FromResult(new object()), new AsyncPoolOptions<object> { Name = name, MaxSize = 2 });
        try
        {
            var observed = recorder.Observe();
            Assert.Equal(0, Gauge(observed, "asyncscopes.pool.size", PoolTag, name));
            Assert.Equal(0, Gauge(observed, "asyncscopes.pool.in_use", PoolTag, name));
            Assert.Equal(0, Gauge(observed, "asyncscopes.pool.idle", PoolTag, name));
            Assert.Equal(0, Gauge(observed, "asyncscopes.pool.waiters", PoolTag, name));

            var first = await pool.RentAsync().AsTask().WaitAsync(Patience);
            var second = await pool.RentAsync().AsTask().WaitAsync(Patience);
            var waiting = pool.RentAsync().AsTask();
            Assert.False(waiting.IsCompleted);

            observed = recorder.Observe();
            Assert.Equal(2, Gauge(observed, "asyncscopes.pool.size", PoolTag, name));
            Assert.Equal(2, Gauge(observed, "asyncscopes.pool.in_use", PoolTag, name));
            Assert.Equal(0, Gauge(observed, "asyncscopes.pool.idle", PoolTag, name));
            Assert.Equal(1, Gauge(observed, "asyncscopes.pool.waiters", PoolTag, name));

            await first.DisposeAsync(); // handed to the waiter
            var third = await waiting.WaitAsync(Patience);
            await second.DisposeAsync(); // back to idle

            observed = recorder.Observe();
            Assert.Equal(2, Gauge(observed, "asyncscopes.pool.size", PoolTag, name));
            Assert.Equal(1, Gauge(observed, "asyncscopes.pool.in_use", PoolTag, name));
            Assert.Equal(1, Gauge(observed, "asyncscopes.pool.idle", PoolTag, name));
            Assert.Equal(0, Gauge(observed, "asyncscopes.pool.waiters", PoolTag, name));

            await third.DisposeAsync();
        }
        finally
        {
            await pool.DisposeAsync().AsTask().WaitAsync(Patience);
        }

        Assert.DoesNotContain(recorder.Observe(), m => m.Has("asyncscopes.pool.size", PoolTag, name));
    }

    // With Validate, a renter that waits awaits its waiter in the pool's own state machine; without, it awaits the
    // waiter directly: both record the wait.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_pool_wait_histogram_records_the_time_a_renter_waited_and_nothing_for_a_renter_that_did_not_wait_or_gave_up(bool validates)
    {
        string name = NewName();
        var time = new FakeTimeProvider();
        var waited = TimeSpan.FromSeconds(2.5);
        using var recorder = new MetricsRecorder();
        await using var pool = new AsyncPool<object>(
            _ => ValueTask.FromResult(new object()),
            new AsyncPoolOptions<object> { Name = name, MaxSize = 1, TimeProvider = time, Validate = ValidateIf(validates) });

        var first = await pool.RentAsync().AsTask().WaitAsync(Patience);
        var waiting = pool.RentAsync().AsTask();
        Assert.False(waiting.IsCompleted);
        time.Advance(waited);
        await first.DisposeAsync();
        var second = await waiting.WaitAsync(Patience);
        await second.DisposeAsync();

        // An idle item: no wait, nothing recorded.
        var third = await pool.RentAsync().AsTask().WaitAsync(Patience);

        // A renter that waits and is cancelled got no item: nothing recorded.
        using (var cancellation = new CancellationTokenSource())
        {
            var cancelled = pool.RentAsync(cancellation.Token).AsTask();
            Assert.False(cancelled.IsCompleted);
            time.Advance(waited);
            await cancellation.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Patience));
        }

        await third.DisposeAsync();

        var recorded = Assert.Single(recorder.Measurements, m => m.Has("asyncscopes.pool.wait.duration", PoolTag, name));
        Assert.Equal(waited.TotalSeconds, recorded.Value, precision: 9);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_pool_wait_histogram_records_the_wait_of_a_renter_handed_a_place_once_its_item_is_made(bool validates)
    {
        string name = NewName();
        var time = new FakeTimeProvider();
        var waited = TimeSpan.FromSeconds(1.5);
        using var recorder = new MetricsRecorder();
        await using var pool = new AsyncPool<object>(
            _ => ValueTask.FromResult(new object()),
            new AsyncPoolOptions<object> { Name = name, MaxSize = 1, TimeProvider = time, Validate = ValidateIf(validates) });
        var first = await pool.RentAsync().AsTask().WaitAsync(Patience);
        var waiting = pool.RentAsync().AsTask();
        time.Advance(waited);

        first.Discard(); // destroyed: its place goes to the waiting renter, which makes a new item
        await first.DisposeAsync();
        var second = await waiting.WaitAsync(Patience);
        await second.DisposeAsync();

        var recorded = Assert.Single(recorder.Measurements, m => m.Has("asyncscopes.pool.wait.duration", PoolTag, name));
        Assert.Equal(waited.TotalSeconds, recorded.Value, precision: 9);
    }

    [Fact]
    public async Task The_queue_depth_gauge_reports_the_items_waiting_to_start_under_the_queue_name()
    {
        string name = NewName();
        using var recorder = new MetricsRecorder();
        var running = NewGate();
        var release = NewGate();
        var queue = new WorkQueue<int>(
            async (_, _) =>
            {
                running.TrySetResult();
                await release.Task;
            },
            new WorkQueueOptions<int> { Name = name, Workers = 1 });
        try
        {
            Assert.Equal(0, Gauge(recorder.Observe(), "asyncscopes.queue.depth", QueueTag, name));
            for (int i = 0; i < 4; i++)
            {
                Assert.True(queue.TryEnqueue(i));
            }

            await running.Task.WaitAsync(Patience); // one taken, three waiting

            Assert.Equal(3, Gauge(recorder.Observe(), "asyncscopes.queue.depth", QueueTag, name));
        }
        finally
        {
            release.TrySetResult();
            await queue.CompleteAsync().WaitAsync(Patience);
        }

        // A completed queue is no longer observed.
        Assert.DoesNotContain(recorder.Observe(), m => m.Has("asyncscopes.queue.depth", QueueTag, name));
    }

    [Fact]
    public async Task The_queue_counters_count_completed_and_failed_items_under_the_queue_name()
    {
        string name = NewName();
        using var recorder = new MetricsRecorder();
        using var cancel = new CancellationTokenSource();
        var blocked = NewGate();
        var queue = new WorkQueue<int>(
            async (item, token) =>
            {
                await Task.Yield();
                if (item == 9)
                {
                    blocked.TrySetResult();
                    await Task.Delay(Timeout.Infinite, token); // ends unprocessed: counted as neither
                }

                if (item % 4 == 0)
                {
                    throw new InvalidOperationException($"item {item} fails");
                }
            },
            new WorkQueueOptions<int> { Name = name, Workers = 1 });
        for (int i = 0; i < 10; i++)
        {
            Assert.True(queue.TryEnqueue(i));
        }

        var completion = queue.CompleteAsync(cancel.Token);
        await blocked.Task.WaitAsync(Patience);
        await cancel.CancelAsync();
        var result = await completion.WaitAsync(Patience);

        var measurements = recorder.Measurements;
        double completed = measurements.Where(m => m.Has("asyncscopes.queue.items.completed", QueueTag, name)).Sum(m => m.Value);
        double failed = measurements.Where(m => m.Has("asyncscopes.queue.items.failed", QueueTag, name)).Sum(m => m.Value);
        Assert.Equal(6, result.Completed); // 1, 2, 3, 5, 6, 7
        Assert.Equal(3, result.Failed.Count); // 0, 4, 8
        Assert.Equal(new[] { 9 }, result.Unprocessed);
        Assert.Equal(result.Completed, completed);
        Assert.Equal(result.Failed.Count, failed);
    }

    [Fact]
    public async Task An_unnamed_queue_counts_its_items_under_an_empty_queue_name()
    {
        // Unnamed queues share the empty name: this test's measurements are told apart by an AsyncLocal marker, which
        // the workers inherit from the queue's creator.
        var marker = new AsyncLocal<string?> { Value = NewName() };
        string mine = marker.Value;
        using var recorder = new MetricsRecorder(() => marker.Value);
        var queue = new WorkQueue<int>(
            (item, _) => item == 1 ? throw new InvalidOperationException("item 1 fails") : Task.CompletedTask,
            new WorkQueueOptions<int> { Workers = 1 });
        Assert.True(queue.TryEnqueue(0));
        Assert.True(queue.TryEnqueue(1));

        await queue.CompleteAsync().WaitAsync(Patience);

        var measurements = recorder.Measurements.Where(m => m.Marker == mine).ToList();
        Assert.Single(measurements, m => m.Has("asyncscopes.queue.items.completed", QueueTag, string.Empty));
        Assert.Single(measurements, m => m.Has("asyncscopes.queue.items.failed", QueueTag, string.Empty));
    }
}
