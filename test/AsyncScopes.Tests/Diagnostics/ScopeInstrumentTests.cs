namespace AsyncScopes.Tests.Diagnostics;

// asyncscopes.scope.open and asyncscopes.scope.children carry no name: they run in the collection that runs alone,
// and each measurement is attributed to this test by an AsyncLocal marker read in the listener's callback, which runs
// synchronously on the thread (and in the execution context) that recorded it.
[Collection("LeakTracking")]
public sealed class ScopeInstrumentTests
{
    private const string KindTag = "asyncscopes.scope.kind";

    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly AsyncLocal<string?> Marker = new();

    private static string NewMarker() => "marker-" + Guid.NewGuid().ToString("N");

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static double[] Mine(MetricsRecorder recorder, string marker, string instrument, string? kind = null) =>
        [.. recorder.Measurements
            .Where(m => m.Marker == marker && m.Instrument == instrument && (kind is null || m.Has(instrument, KindTag, kind)))
            .Select(m => m.Value)];

    [Fact]
    public async Task The_open_scopes_counter_goes_up_by_one_when_a_TaskScope_opens_and_down_by_one_when_it_closes()
    {
        string marker = NewMarker();
        Marker.Value = marker;
        using var recorder = new MetricsRecorder(() => Marker.Value);

        var scope = new TaskScope();
        Assert.Equal(new[] { 1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "TaskScope"));

        await scope.JoinAsync().WaitAsync(Patience);

        Assert.Equal(new[] { 1.0, -1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "TaskScope"));

        // A scope closes once: joining it again, or disposing it, counts nothing more.
        await scope.JoinAsync().WaitAsync(Patience);
        await scope.DisposeAsync();
        Assert.Equal(new[] { 1.0, -1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "TaskScope"));
    }

    [Fact]
    public async Task A_scope_that_closes_after_a_stop_is_counted_under_its_reason_and_a_quiet_one_is_not()
    {
        string marker = NewMarker();
        Marker.Value = marker;
        using var recorder = new MetricsRecorder(() => Marker.Value);
        const string Cancelled = "asyncscopes.scope.cancelled";
        const string ReasonTag = "asyncscopes.scope.cancellation_reason";

        var stopped = new TaskScope();
        stopped.Stop();
        await stopped.JoinAsync().WaitAsync(Patience);
        var untouched = new TaskScope();
        await untouched.JoinAsync().WaitAsync(Patience);
        var cancelled = new TaskScope();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.JoinAsync().WaitAsync(Patience));

        var measurements = recorder.Measurements.Where(m => m.Marker == marker && m.Instrument == Cancelled).ToList();
        Assert.Equal(2, measurements.Count);
        Assert.Single(measurements, m => m.Has(Cancelled, ReasonTag, "Stop") && m.Value == 1);
        Assert.Single(measurements, m => m.Has(Cancelled, ReasonTag, "Cancel") && m.Value == 1);
    }

    [Fact]
    public async Task The_open_scopes_counter_goes_up_and_down_for_an_AsyncExitStack_under_its_kind()
    {
        string marker = NewMarker();
        Marker.Value = marker;
        using var recorder = new MetricsRecorder(() => Marker.Value);

        var stack = new AsyncExitStack();
        Assert.Equal(new[] { 1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "AsyncExitStack"));

        stack.Complete();
        await stack.DisposeAsync().AsTask().WaitAsync(Patience);

        Assert.Equal(new[] { 1.0, -1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "AsyncExitStack"));
        Assert.Empty(Mine(recorder, marker, "asyncscopes.scope.open", "TaskScope"));
    }

    [Fact]
    public async Task The_open_scopes_counter_goes_up_and_down_for_a_WorkQueue_under_its_kind()
    {
        string marker = NewMarker();
        Marker.Value = marker;
        using var recorder = new MetricsRecorder(() => Marker.Value);

        var queue = new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Workers = 1 });
        Assert.Equal(new[] { 1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "WorkQueue"));

        await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(new[] { 1.0, -1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "WorkQueue"));
        Assert.Equal(new[] { 1.0, -1.0 }, Mine(recorder, marker, "asyncscopes.scope.open", "TaskScope")); // its workers' scope (guide, 4.6)
    }

    [Fact]
    public async Task The_children_counter_goes_up_when_a_child_starts_and_down_when_it_ends()
    {
        string marker = NewMarker();
        Marker.Value = marker;
        using var recorder = new MetricsRecorder(() => Marker.Value);
        var scope = new TaskScope();
        var release = NewGate();

        var child = scope.Start(async _ => await release.Task);
        Assert.Equal(new[] { 1.0 }, Mine(recorder, marker, "asyncscopes.scope.children"));

        release.SetResult();
        await child.WaitAsync(Patience);
        await scope.JoinAsync().WaitAsync(Patience);

        Assert.Equal(new[] { 1.0, -1.0 }, Mine(recorder, marker, "asyncscopes.scope.children"));
    }
}
