using System.Diagnostics;

namespace AsyncScopes;

/// <summary>The library's <see cref="ActivitySource"/>, named <see cref="ScopeDiagnostics.ActivitySourceName"/>: a span
/// per <see cref="TaskScope"/>, made only while a listener (OpenTelemetry's tracer, say) samples it.</summary>
internal static class ScopeTracing
{
    public static readonly ActivitySource Source = new(ScopeDiagnostics.ActivitySourceName, typeof(ScopeTracing).Assembly.GetName().Version?.ToString());

    public const string ScopeNameTag = "asyncscopes.scope.name";
    public const string ChildrenStartedTag = "asyncscopes.scope.children.started";
    public const string ChildrenFailedTag = "asyncscopes.scope.children.failed";
    public const string ChildrenCancelledTag = "asyncscopes.scope.children.cancelled";
    public const string OutcomeTag = "asyncscopes.scope.outcome";
    public const string PoolNameTag = "asyncscopes.pool.name";
    public const string WaitOutcomeTag = "asyncscopes.pool.wait.outcome";
    public const string QueueNameTag = "asyncscopes.queue.name";
    public const string ItemOutcomeTag = "asyncscopes.queue.item.outcome";

    /// <summary>
    /// Starts a span whose parent is the creator's current one, and leaves the creator's current span as it was: the
    /// new span is the parent of what runs <em>inside</em> the scope (its body and its children make it current),
    /// not of what its creator does next.
    /// </summary>
    /// <returns>The span, or <see langword="null"/> (nothing allocated) when nobody listens or it is not sampled.</returns>
    public static Activity? StartScopeSpan(string operationName, string? scopeName) => StartSpan(operationName, scopeName, ScopeNameTag);

    /// <summary>A span for one wait of a renter of an <see cref="AsyncPool{T}"/> (only a rent that waits has one), with
    /// the renter's current span as its parent, which it leaves current.</summary>
    public static Activity? StartPoolWaitSpan(string? poolName) => StartSpan("AsyncPool.Wait", poolName, PoolNameTag);

    /// <summary>Ends a pool wait's span: the renter got an item or a place (<c>acquired</c>), its token ended the wait
    /// (<c>cancelled</c>), or the acquire timeout or the pool's disposal did (<c>failed</c>, an error).</summary>
    public static void StopPoolWaitSpan(Activity span, System.Threading.Tasks.Sources.ValueTaskSourceStatus outcome)
    {
        span.SetTag(WaitOutcomeTag, outcome switch
        {
            System.Threading.Tasks.Sources.ValueTaskSourceStatus.Succeeded => "acquired",
            System.Threading.Tasks.Sources.ValueTaskSourceStatus.Canceled => "cancelled",
            _ => "failed",
        });
        if (outcome == System.Threading.Tasks.Sources.ValueTaskSourceStatus.Faulted)
        {
            span.SetStatus(ActivityStatusCode.Error);
        }

        Stop(span);
    }

    /// <summary>A span for one item of a <see cref="WorkQueue{T}"/>, whose parent is the span that was current where the
    /// item was enqueued (<paramref name="producer"/>), never the worker's own current one: without a producer's span,
    /// the item's is the root of a trace. Leaves the worker's current span as it was.</summary>
    public static Activity? StartItemSpan(string? queueName, ActivityContext producer)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var current = Activity.Current;
        Activity.Current = null; // so that a missing producer makes a root, not a child of the worker's ambient span
        var span = Source.StartActivity("WorkQueue.Item", ActivityKind.Consumer, producer);
        return Name(span, current, "WorkQueue.Item", queueName, QueueNameTag);
    }

    /// <summary>Ends an item's span with its outcome: <c>completed</c>, <c>unprocessed</c>, or <c>failed</c> (an error
    /// with <paramref name="failure"/>'s message).</summary>
    public static void StopItemSpan(Activity span, string outcome, Exception? failure = null)
    {
        span.SetTag(ItemOutcomeTag, outcome);
        if (failure is not null)
        {
            span.SetStatus(ActivityStatusCode.Error, failure.Message);
        }

        Stop(span);
    }

    /// <summary>Stops <paramref name="span"/> on whatever thread and flow ends it, leaving that flow's current span as
    /// it was: <see cref="Activity.Stop"/> sets the current span back to the stopped one's parent, which would replace
    /// the current span of the caller that happened to close the scope or end the wait.</summary>
    public static void Stop(Activity span)
    {
        var current = Activity.Current;
        span.Stop();
        if (!ReferenceEquals(current, span))
        {
            Activity.Current = current;
        }
    }

    private static Activity? StartSpan(string operationName, string? name, string nameTag)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var current = Activity.Current;
        var span = Source.StartActivity(operationName, ActivityKind.Internal);
        return Name(span, current, operationName, name, nameTag);
    }

    // Names a span just started (or drops it, when it is sampled out) and makes `current` the current span again.
    private static Activity? Name(Activity? span, Activity? current, string operationName, string? name, string nameTag)
    {
        if (span is null)
        {
            Activity.Current = current;
            return null;
        }

        if (!span.IsAllDataRequested)
        {
            // Sampled out, made only to carry the trace's context: not worth a span per scope, nor a context per child.
            span.Stop();
            Activity.Current = current;
            return null;
        }

        if (name is not null)
        {
            span.DisplayName = $"{operationName} {name}";
            span.SetTag(nameTag, name);
        }

        Activity.Current = current;
        return span;
    }
}
