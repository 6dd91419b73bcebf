using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using OpenTelemetry;
using OpenTelemetry.Trace;
using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Diagnostics;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TracingCollectionDefinition
{
    /// <summary>Alone: while a tracer listens to AsyncScopes, every scope of the process makes a span.</summary>
    public const string Name = "Tracing";
}

/// <summary>A <see cref="TaskScope"/> as a span, through the real OpenTelemetry SDK and its in-memory exporter.</summary>
[Collection(TracingCollectionDefinition.Name)]
public sealed class TracingTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly ActivitySource Test = new("AsyncScopes.Tests.Tracing");

    private readonly List<Activity> _exported = [];
    private readonly TracerProvider _tracer;

    public TracingTests()
    {
        _tracer = Sdk.CreateTracerProviderBuilder()
            .AddSource(ScopeDiagnostics.ActivitySourceName, Test.Name)
            .SetSampler(new AlwaysOnSampler())
            .AddInMemoryExporter(_exported)
            .Build()!;
    }

    public void Dispose() => _tracer.Dispose();

    [Fact]
    public async Task A_scope_is_a_span_inside_its_creators_and_around_its_childrens()
    {
        Activity? creatorsAfter;
        using (var request = Test.StartActivity("request")!)
        {
            await TaskScope.RunAsync(
                scope =>
                {
                    _ = scope.Start(_ =>
                    {
                        using var query = Test.StartActivity("query");
                        return Task.CompletedTask;
                    });
                    using var body = Test.StartActivity("body work");
                    return Task.CompletedTask;
                },
                options: new TaskScopeOptions { Name = "orders" });
            creatorsAfter = Activity.Current;
            Assert.Same(request, creatorsAfter); // the scope's span never became the creator's current one
        }

        var spans = Spans();
        var root = spans.Single(span => span.OperationName == "request");
        var scopeSpan = spans.Single(span => span.Source.Name == ScopeDiagnostics.ActivitySourceName);
        Assert.Equal(root.SpanId, scopeSpan.ParentSpanId);
        Assert.Equal("TaskScope orders", scopeSpan.DisplayName);
        Assert.Equal("orders", scopeSpan.GetTagItem("asyncscopes.scope.name"));
        Assert.Equal(scopeSpan.SpanId, spans.Single(span => span.OperationName == "query").ParentSpanId);
        Assert.Equal(scopeSpan.SpanId, spans.Single(span => span.OperationName == "body work").ParentSpanId);
        Assert.Equal("completed", scopeSpan.GetTagItem("asyncscopes.scope.outcome"));
        Assert.Equal(1, scopeSpan.GetTagItem("asyncscopes.scope.children.started"));
        Assert.Equal(ActivityStatusCode.Unset, scopeSpan.Status);
    }

    [Fact]
    public async Task A_failed_scope_says_how_many_children_failed_or_were_cancelled_and_is_an_error()
    {
        var failure = new InvalidOperationException("the payment service refused");
        using (Test.StartActivity("request"))
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => TaskScope.RunAsync(scope =>
            {
                _ = scope.Start(token => Task.Delay(Timeout.Infinite, token)); // ends cancelled
                _ = scope.Start(token => Task.Delay(Timeout.Infinite, token));
                _ = scope.Start(_ => Task.FromException(failure));
                return Task.CompletedTask;
            }));
        }

        var scopeSpan = Spans().Single(span => span.Source.Name == ScopeDiagnostics.ActivitySourceName);
        Assert.Equal(3, scopeSpan.GetTagItem("asyncscopes.scope.children.started"));
        Assert.Equal(1, scopeSpan.GetTagItem("asyncscopes.scope.children.failed"));
        Assert.Equal(2, scopeSpan.GetTagItem("asyncscopes.scope.children.cancelled"));
        Assert.Equal("Failure", scopeSpan.GetTagItem("asyncscopes.scope.cancellation_reason"));
        Assert.Equal("failed", scopeSpan.GetTagItem("asyncscopes.scope.outcome"));
        Assert.Equal(ActivityStatusCode.Error, scopeSpan.Status);
        Assert.Equal(failure.Message, scopeSpan.StatusDescription);
    }

    [Fact]
    public async Task The_outcome_tells_a_stop_a_cancellation_and_a_timeout_apart()
    {
        var time = new FakeTimeProvider();
        using (Test.StartActivity("request"))
        {
            var stopped = new TaskScope(new TaskScopeOptions { Name = "stopped" });
            stopped.Stop();
            await stopped.JoinAsync().WaitAsync(Patience);

            var cancelled = new TaskScope(new TaskScopeOptions { Name = "cancelled" });
            cancelled.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.JoinAsync().WaitAsync(Patience));

            var late = new TaskScope(new TaskScopeOptions { Name = "late", Timeout = TimeSpan.FromSeconds(5), TimeProvider = time });
            _ = late.Start(async token => await WhenCancelled(token));
            time.Advance(TimeSpan.FromSeconds(5));
            await Assert.ThrowsAsync<TimeoutException>(() => late.JoinAsync().WaitAsync(Patience));
        }

        var outcomes = Spans()
            .Where(span => span.Source.Name == ScopeDiagnostics.ActivitySourceName)
            .ToDictionary(span => (string)span.GetTagItem("asyncscopes.scope.name")!, span => (span.GetTagItem("asyncscopes.scope.outcome"), span.GetTagItem("asyncscopes.scope.cancellation_reason")));
        Assert.Equal(("stopped", "Stop"), outcomes["stopped"]);
        Assert.Equal(("cancelled", "Cancel"), outcomes["cancelled"]);
        Assert.Equal(("timeout", "Timeout"), outcomes["late"]);
    }

    [Fact]
    public async Task Closing_a_scope_leaves_the_current_span_of_whoever_closed_it_as_it_was()
    {
        using var request = Test.StartActivity("request")!;
        var scope = new TaskScope(new TaskScopeOptions { Name = "idle" });
        using var phase = Test.StartActivity("phase")!;

        await scope.JoinAsync().WaitAsync(Patience); // closes the scope, and ends its span, here

        Assert.Same(phase, Activity.Current);
    }

    [Fact]
    public async Task The_span_has_ended_when_the_join_completes()
    {
        Activity? scopeSpan = null;
        using (Test.StartActivity("request"))
        {
            var scope = new TaskScope(new TaskScopeOptions { Name = "closed by its child" });
            var child = scope.Start(async token =>
            {
                scopeSpan = Activity.Current;
                await Task.Yield(); // the child, on another thread, closes the scope
            });
            await child.WaitAsync(Patience);
            await scope.JoinAsync().WaitAsync(Patience);
        }

        Assert.NotNull(scopeSpan);
        Assert.Equal("TaskScope", scopeSpan.OperationName);
        Assert.True(scopeSpan.IsStopped);
        Assert.Contains(scopeSpan, _exported);
    }

    [Fact]
    public async Task A_scope_that_the_sampler_drops_makes_no_span_and_its_children_see_the_creators()
    {
        _tracer.Dispose();
        using var dropping = Sdk.CreateTracerProviderBuilder()
            .AddSource(ScopeDiagnostics.ActivitySourceName, Test.Name)
            .SetSampler(new AlwaysOffSampler())
            .AddInMemoryExporter(_exported)
            .Build()!;
        var creators = Activity.Current;

        var seenByChild = await CurrentSpanOfAChildAsync();

        Assert.Same(creators, seenByChild);
        Assert.Empty(_exported);
    }

    [Fact]
    public async Task Without_a_listener_no_span_is_made_and_the_current_one_stays()
    {
        _tracer.Dispose(); // nobody listens to AsyncScopes any more
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source == Test,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        using var request = Test.StartActivity("request")!;

        var seenByChild = await CurrentSpanOfAChildAsync();

        Assert.Same(request, seenByChild); // the caller's span flows on, no scope span in between
    }

    [Fact]
    public async Task A_rent_that_waits_is_a_span_with_how_the_wait_ended_and_one_that_does_not_wait_is_none()
    {
        var time = new FakeTimeProvider();
        await using var pool = new AsyncPool<object>(
            _ => ValueTask.FromResult(new object()),
            new AsyncPoolOptions<object> { MaxSize = 1, Name = "db", AcquireTimeout = TimeSpan.FromSeconds(10), TimeProvider = time });
        using (Test.StartActivity("request"))
        {
            var held = await pool.RentAsync();
            var acquired = pool.RentAsync().AsTask();
            await held.DisposeAsync();
            await (await acquired.WaitAsync(Patience)).DisposeAsync();

            held = await pool.RentAsync(); // free: no wait, no span
            using var cancellation = new CancellationTokenSource();
            var cancelled = pool.RentAsync(cancellation.Token).AsTask();
            await cancellation.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Patience));

            var timedOut = pool.RentAsync().AsTask();
            time.Advance(TimeSpan.FromSeconds(10));
            await Assert.ThrowsAsync<TimeoutException>(() => timedOut.WaitAsync(Patience));
            await held.DisposeAsync();
        }

        var root = Spans().Single(span => span.OperationName == "request");
        var waits = Spans().Where(span => span.OperationName == "AsyncPool.Wait").ToList();
        Assert.Equal(["acquired", "cancelled", "failed"], waits.Select(span => span.GetTagItem("asyncscopes.pool.wait.outcome")));
        Assert.All(waits, span => Assert.Equal(root.SpanId, span.ParentSpanId));
        Assert.All(waits, span => Assert.Equal("AsyncPool.Wait db", span.DisplayName));
        Assert.Equal([ActivityStatusCode.Unset, ActivityStatusCode.Unset, ActivityStatusCode.Error], waits.Select(span => span.Status));
    }

    [Fact]
    public async Task A_traced_queues_item_is_a_span_under_the_span_that_enqueued_it_and_around_its_handlers_spans()
    {
        await using var queue = new WorkQueue<string>(
            async (name, _) =>
            {
                if (name != "ada")
                {
                    await Task.Yield(); // ada's handler completes at once; the others' spans come after an await
                }

                using var send = Test.StartActivity($"send to {name}");
                if (name == "nobody")
                {
                    throw new InvalidOperationException("no such mailbox");
                }
            },
            new WorkQueueOptions<string> { Name = "mail", Workers = 1, TraceItems = true });
        using (Test.StartActivity("request"))
        {
            foreach (string name in new[] { "ada", "bob", "nobody" })
            {
                await queue.EnqueueAsync(name);
            }
        }

        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(1, result.FailedCount);
        var request = Spans().Single(span => span.OperationName == "request");
        var items = Spans().Where(span => span.OperationName == "WorkQueue.Item").ToList();
        Assert.Equal(["completed", "completed", "failed"], items.Select(span => span.GetTagItem("asyncscopes.queue.item.outcome")));
        Assert.All(items, span =>
        {
            Assert.Equal(request.SpanId, span.ParentSpanId);
            Assert.Equal(ActivityKind.Consumer, span.Kind);
            Assert.Equal("WorkQueue.Item mail", span.DisplayName);
            Assert.Equal("mail", span.GetTagItem("asyncscopes.queue.name"));
        });
        Assert.Equal([ActivityStatusCode.Unset, ActivityStatusCode.Unset, ActivityStatusCode.Error], items.Select(span => span.Status));
        Assert.Equal("no such mailbox", items[2].StatusDescription);
        Assert.Equal(
            items.Select(span => span.SpanId),
            new[] { "ada", "bob", "nobody" }.Select(name => Spans().Single(span => span.OperationName == $"send to {name}").ParentSpanId));
    }

    [Fact]
    public async Task An_item_enqueued_outside_any_span_is_a_trace_of_its_own_not_a_child_of_the_span_the_queue_began_in()
    {
        var started = NewGate();
        WorkQueue<string> queue;
        using (Test.StartActivity("startup")) // the workers begin under this span
        {
            queue = new WorkQueue<string>(
                async (_, token) =>
                {
                    started.TrySetResult();
                    await Task.Delay(Timeout.Infinite, token);
                },
                new WorkQueueOptions<string> { Name = "nightly", Workers = 1, TraceItems = true });
        }

        await queue.EnqueueAsync("report");
        await started.Task.WaitAsync(Patience);
        using var cancellation = new CancellationTokenSource();
        var completing = queue.CompleteAsync(cancellation.Token);
        await cancellation.CancelAsync();

        Assert.Equal(["report"], (await completing.WaitAsync(Patience)).Unprocessed);
        var item = Assert.Single(_exported, span => span.OperationName == "WorkQueue.Item" && Equals(span.GetTagItem("asyncscopes.queue.name"), "nightly"));
        Assert.Equal(default, item.ParentSpanId);
        Assert.Equal("unprocessed", item.GetTagItem("asyncscopes.queue.item.outcome"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    public async Task Each_item_is_a_child_of_the_span_that_enqueued_it_with_many_producers_and_workers(int capacity)
    {
        const int Producers = 4;
        const int ItemsEach = 250;
        var enqueuedUnder = new System.Collections.Concurrent.ConcurrentDictionary<int, ActivitySpanId>();
        var handledUnder = new System.Collections.Concurrent.ConcurrentDictionary<int, ActivitySpanId>();
        var queue = new WorkQueue<int>(
            async (item, _) =>
            {
                handledUnder[item] = Activity.Current!.ParentSpanId; // the item's span is current; its parent, the enqueuer's
                if (item % 3 == 0)
                {
                    await Task.Yield(); // some items end later, on another thread
                }
            },
            new WorkQueueOptions<int> { Name = "fan-in", Workers = 3, Capacity = capacity, TraceItems = true });
        var start = NewGate();
        var producers = Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
        {
            await start.Task;
            for (int i = 0; i < ItemsEach; i++)
            {
                int item = (p * ItemsEach) + i;
                using var enqueue = Test.StartActivity($"enqueue {item}")!;
                enqueuedUnder[item] = enqueue.SpanId;
                await queue.EnqueueAsync(item);
            }
        })).ToArray();
        start.SetResult();
        await Task.WhenAll(producers).WaitAsync(Patience);

        var result = await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Equal(Producers * ItemsEach, result.Completed);
        Assert.Equal(Producers * ItemsEach, handledUnder.Count);
        Assert.All(handledUnder, pair => Assert.Equal(enqueuedUnder[pair.Key], pair.Value));
    }

    [Fact]
    public async Task A_queue_makes_no_span_per_item_unless_told_to()
    {
        await using var queue = new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Name = "quiet", Workers = 1 });
        using (Test.StartActivity("request"))
        {
            await queue.EnqueueAsync(1);
        }

        await queue.CompleteAsync().WaitAsync(Patience);

        Assert.Single(Spans()); // the request's own
    }

    // What a child of a new scope finds current.
    private static async Task<Activity?> CurrentSpanOfAChildAsync()
    {
        Activity? seen = null;
        await TaskScope.RunAsync(scope =>
        {
            _ = scope.Start(_ =>
            {
                seen = Activity.Current;
                return Task.CompletedTask;
            });
            return Task.CompletedTask;
        }).WaitAsync(Patience);
        return seen;
    }

    // The spans of this test's traces only: other tests' scopes may run while the tracer listens.
    private List<Activity> Spans()
    {
        var roots = _exported.Where(span => span.Source == Test && span.Parent is null).Select(span => span.TraceId).ToHashSet();
        return [.. _exported.Where(span => roots.Contains(span.TraceId))];
    }
}
