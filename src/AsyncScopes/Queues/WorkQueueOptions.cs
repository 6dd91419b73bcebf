namespace AsyncScopes;

/// <summary>Options of a <see cref="WorkQueue{T}"/>; validated and copied when the queue is created.</summary>
/// <typeparam name="T">The work item type.</typeparam>
/// <remarks>Settable, as options of the .NET options pattern are (<c>Configure</c>, <c>Bind</c>, the configuration
/// binding source generator): the queue keeps a copy made when it is created, so changing an instance afterwards
/// changes no queue.</remarks>
public sealed class WorkQueueOptions<T>
{
    /// <summary>How many handlers run at once. Default: <see cref="Environment.ProcessorCount"/>; at least 1.</summary>
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>The most items waiting to start; when full, <see cref="WorkQueue{T}.EnqueueAsync"/> waits for room and
    /// <see cref="WorkQueue{T}.TryEnqueue"/> returns <see langword="false"/>. 0 (the default): unbounded.</summary>
    public int Capacity { get; set; }

    /// <summary>The time <see cref="WorkQueue{T}.DisposeAsync"/> allows the queue to finish its work before it
    /// cancels the running handlers. Default 30 s. <see cref="TimeSpan.Zero"/> cancels them at once; negative values,
    /// <see cref="Timeout.InfiniteTimeSpan"/> included, are rejected: a disposal always ends.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Called once for each item whose handler failed, with the failure, before the item is counted as
    /// failed. An exception it throws is reported through <see cref="ScopeDiagnostics.UnobservedFailure"/>; the
    /// item stays failed with the handler's exception.</summary>
    public Func<T, Exception, ValueTask>? OnError { get; set; }

    /// <summary>
    /// The most failed items, with their exceptions, that the queue keeps for <see cref="WorkQueueResult{T}.Failed"/>:
    /// the last ones to fail; beyond it, each new failure drops the oldest kept. Default 100: enough to see what
    /// keeps failing, while a long-lived queue whose handler keeps failing holds a bounded number of items and
    /// exceptions (with their stack traces). 0 keeps none; <see cref="int.MaxValue"/> keeps every one. Negative values
    /// are rejected.
    /// </summary>
    /// <remarks>Only the list is bounded: <see cref="WorkQueueResult{T}.FailedCount"/> and
    /// <see cref="WorkQueue{T}.Statistics"/> count every failure, and <see cref="OnError"/> sees every one, which makes
    /// it the place to log or store them all.</remarks>
    public int MaxRetainedFailures { get; set; } = 100;

    /// <summary>The clock of <see cref="DrainTimeout"/>. Default: <see cref="System.TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>A name for diagnostics: in metrics tags, leak reports and unobserved-failure events.</summary>
    public string? Name { get; set; }

    /// <summary>
    /// A limiter the queue shares with others (a <see cref="System.Threading.RateLimiting.ConcurrencyLimiter"/> that
    /// every queue and scope calling one service uses, say): each item waits for one permit before its handler runs and
    /// gives it back when the handler ends, whatever happens. <see langword="null"/> (the default): none. The queue
    /// does not own it.
    /// </summary>
    /// <remarks>An item whose worker is stopped while it waits is unprocessed (<see cref="WorkQueueResult{T}.Unprocessed"/>)
    /// and its request leaves the limiter's queue, so neither the item nor a permit is lost. A permit the limiter
    /// refuses fails the item with <see cref="PermitRejectedException"/> (<see cref="OnError"/>,
    /// <see cref="WorkQueueResult{T}.Failed"/>). The workers wait for permits too: a limiter with fewer permits than
    /// <see cref="Workers"/> bounds how many items run at once.</remarks>
    public System.Threading.RateLimiting.RateLimiter? Limiter { get; set; }

    /// <summary>
    /// Whether each item is a span (<c>WorkQueue.Item</c>, of kind <see cref="System.Diagnostics.ActivityKind.Consumer"/>)
    /// of the <see cref="ScopeDiagnostics.ActivitySourceName"/> source while a listener samples it: a child of the span
    /// current where the item was enqueued (none there: a trace of its own), from when a worker takes the item (its
    /// wait for a <see cref="Limiter"/> permit included) until its handler ends; the spans the handler makes are its
    /// children. Tagged with the queue's name and the item's outcome: <c>completed</c>, <c>failed</c> (an error, with
    /// the exception's message) or <c>unprocessed</c>. Default: <see langword="false"/>, because a queue of many small
    /// items would make a span each.
    /// </summary>
    /// <remarks>A queue that traces its items keeps the enqueuer's trace context (a value: the span is not kept alive)
    /// beside each item, and its enqueues and dequeues take one lock that keeps the two in step. A queue that does not
    /// pays nothing for the option.</remarks>
    public bool TraceItems { get; set; }

    /// <summary>A copy of these options, which the queue keeps: changing the options afterwards changes nothing.</summary>
    internal WorkQueueOptions<T> Copy() => new()
    {
        Workers = Workers,
        Capacity = Capacity,
        DrainTimeout = DrainTimeout,
        OnError = OnError,
        MaxRetainedFailures = MaxRetainedFailures,
        TimeProvider = TimeProvider,
        Limiter = Limiter,
        Name = Name,
        TraceItems = TraceItems,
    };

    /// <summary>Throws the first of <see cref="FindProblems"/>.</summary>
    internal void ThrowIfInvalid()
    {
        if (FindProblems().FirstOrDefault() is { } problem)
        {
            throw problem;
        }
    }

    /// <summary>Every setting out of range, each as the exception the queue's constructor would throw for it.</summary>
    internal IEnumerable<ArgumentException> FindProblems()
    {
        if (Workers < 1)
        {
            yield return new ArgumentOutOfRangeException(nameof(Workers), Workers, "Workers must be at least 1.");
        }

        if (Capacity < 0)
        {
            yield return new ArgumentOutOfRangeException(nameof(Capacity), Capacity, "Capacity must be 0 (unbounded) or positive.");
        }

        if (MaxRetainedFailures < 0)
        {
            yield return new ArgumentOutOfRangeException(
                nameof(MaxRetainedFailures), MaxRetainedFailures, "MaxRetainedFailures must be 0 (keep none, count them only) or positive.");
        }

        if (Cancellation.TimeoutOutOfRange(DrainTimeout, nameof(DrainTimeout), infiniteAllowed: false) is { } drain)
        {
            yield return drain;
        }

        if (TimeProvider is null)
        {
            yield return new ArgumentException("TimeProvider must not be null.", nameof(TimeProvider));
        }
    }
}
