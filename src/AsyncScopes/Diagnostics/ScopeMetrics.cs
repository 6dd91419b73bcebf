using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace AsyncScopes;

/// <summary>The instruments of meter <see cref="ScopeDiagnostics.MeterName"/>.</summary>
/// <remarks>
/// Counters cost one <c>Enabled</c> check when nobody listens. Gauges of pools and queues are observed: the sources
/// register here and are read only when a listener collects.
/// </remarks>
internal static class ScopeMetrics
{
    public const string KindTag = "asyncscopes.scope.kind";
    public const string PoolTag = "asyncscopes.pool.name";
    public const string QueueTag = "asyncscopes.queue.name";

    public const string CancellationReasonTag = "asyncscopes.scope.cancellation_reason";

    private static readonly Meter Meter = new(ScopeDiagnostics.MeterName, typeof(ScopeMetrics).Assembly.GetName().Version?.ToString());

    private static readonly List<WeakReference<IObservedSource>> Sources = [];
    private static readonly Lock SourcesLock = new();

    public static readonly UpDownCounter<long> OpenScopes = Meter.CreateUpDownCounter<long>(
        "asyncscopes.scope.open", "{scope}", "Scopes open now, by kind.");

    public static readonly Counter<long> CancelledScopes = Meter.CreateCounter<long>(
        "asyncscopes.scope.cancelled", "{scope}", "Task scopes that closed after something asked them to stop, by the first reason.");

    public static readonly UpDownCounter<long> RunningChildren = Meter.CreateUpDownCounter<long>(
        "asyncscopes.scope.children", "{task}", "Children of task scopes that are started and not finished.");

    public static readonly Histogram<double> PoolWaitDuration = Meter.CreateHistogram<double>(
        "asyncscopes.pool.wait.duration", "s", "How long renters waited for a pool item, when they had to wait.");

    public static readonly Counter<long> QueueCompleted = Meter.CreateCounter<long>(
        "asyncscopes.queue.items.completed", "{item}", "Work queue items whose handler completed.");

    public static readonly Counter<long> QueueFailed = Meter.CreateCounter<long>(
        "asyncscopes.queue.items.failed", "{item}", "Work queue items whose handler failed.");

    static ScopeMetrics()
    {
        Meter.CreateObservableGauge("asyncscopes.pool.size", () => Observe(PoolMeasure.Size), "{item}", "Items that exist in a pool.");
        Meter.CreateObservableGauge("asyncscopes.pool.in_use", () => Observe(PoolMeasure.InUse), "{item}", "Items leased from a pool.");
        Meter.CreateObservableGauge("asyncscopes.pool.idle", () => Observe(PoolMeasure.Idle), "{item}", "Idle items in a pool.");
        Meter.CreateObservableGauge("asyncscopes.pool.waiters", () => Observe(PoolMeasure.Waiters), "{renter}", "Renters waiting for a pool item.");
        Meter.CreateObservableGauge("asyncscopes.queue.depth", () => Observe(PoolMeasure.QueueDepth), "{item}", "Work queue items accepted and not yet started.");
    }

    /// <summary>What an observed gauge reads from a source.</summary>
    public enum PoolMeasure
    {
        Size,
        InUse,
        Idle,
        Waiters,
        QueueDepth,
    }

    /// <summary>A pool or queue whose gauges are read when a listener collects.</summary>
    public interface IObservedSource
    {
        /// <summary>Appends the measurement, if this source has one of that kind.</summary>
        void Observe(PoolMeasure measure, List<Measurement<long>> measurements);
    }

    /// <summary>Registers a source; it is held weakly and dropped once collected or unregistered.</summary>
    public static void Register(IObservedSource source)
    {
        lock (SourcesLock)
        {
            Sources.Add(new WeakReference<IObservedSource>(source));
        }
    }

    public static void Unregister(IObservedSource source)
    {
        lock (SourcesLock)
        {
            Sources.RemoveAll(r => !r.TryGetTarget(out var s) || ReferenceEquals(s, source));
        }
    }

    public static TagList Tag(string key, string? value) => new() { { key, value ?? string.Empty } };

    private static List<Measurement<long>> Observe(PoolMeasure measure)
    {
        var measurements = new List<Measurement<long>>();
        lock (SourcesLock)
        {
            Sources.RemoveAll(r => !r.TryGetTarget(out _));
            foreach (var reference in Sources)
            {
                if (reference.TryGetTarget(out var source))
                {
                    source.Observe(measure, measurements);
                }
            }
        }

        return measurements;
    }
}
