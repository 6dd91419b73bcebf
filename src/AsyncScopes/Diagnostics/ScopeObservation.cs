using System.Diagnostics;

namespace AsyncScopes;

/// <summary>
/// What watches one <see cref="TaskScope"/> from outside while it is open: its leak-tracking record and its span, with
/// the counts of its children the span reports. Made only when one of them is on, so that a scope nobody watches
/// carries one null field.
/// </summary>
internal sealed class ScopeObservation(ScopeTracker? tracker, Activity? span)
{
    private int _started;
    private int _failed;
    private int _cancelled;

    public ScopeTracker? Tracker => tracker;

    /// <summary>The scope's span: current in its body and its children, so that what they trace is inside it.</summary>
    public Activity? Span => span;

    public static ScopeObservation? StartIfObserved(ScopeTracker? tracker, string? scopeName, bool traced)
    {
        var span = traced ? ScopeTracing.StartScopeSpan("TaskScope", scopeName) : null;
        return tracker is null && span is null ? null : new ScopeObservation(tracker, span);
    }

    /// <summary>Makes the scope the current one of the calling flow (an async method's, so that it ends with it): its
    /// span is the parent of what the flow traces, its tracked record the parent of the scopes the flow creates.</summary>
    public void EnterAsCurrent()
    {
        if (span is not null)
        {
            Activity.Current = span;
        }

        if (tracker is not null)
        {
            ScopeTracker.EnterAsCurrent(tracker.Info);
        }
    }

    public void ChildStarted() => Interlocked.Increment(ref _started);

    public void ChildFailed() => Interlocked.Increment(ref _failed);

    public void ChildrenCancelled(int count) => Interlocked.Add(ref _cancelled, count);

    /// <summary>Ends the span with the scope's outcome, just before the join completes with it.</summary>
    /// <param name="outcome">completed, stopped, cancelled, failed or timeout.</param>
    /// <param name="failure">The first failure, for a failed or timed-out scope: the span's status is then an error.</param>
    /// <param name="reason">The first request to stop or cancel, if any.</param>
    public void StopSpan(string outcome, Exception? failure, ScopeCancellationReason reason)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag(ScopeTracing.ChildrenStartedTag, Volatile.Read(ref _started));
        span.SetTag(ScopeTracing.ChildrenFailedTag, Volatile.Read(ref _failed));
        span.SetTag(ScopeTracing.ChildrenCancelledTag, Volatile.Read(ref _cancelled));
        if (reason != ScopeCancellationReason.None)
        {
            span.SetTag(ScopeMetrics.CancellationReasonTag, reason.ToString());
        }

        span.SetTag(ScopeTracing.OutcomeTag, outcome);
        if (failure is not null)
        {
            span.SetStatus(ActivityStatusCode.Error, failure.Message);
        }

        ScopeTracing.Stop(span);
    }
}
