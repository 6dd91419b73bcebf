using System.Collections.Concurrent;
using System.Diagnostics;

namespace AsyncScopes;

/// <summary>
/// The leak tracking record of one scope: listed in <see cref="ScopeDiagnostics.OpenScopes"/> until closed, and
/// reported through <see cref="ScopeDiagnostics.LeakDetected"/> if it is collected before being closed. Only created
/// while leak tracking is on; the registry holds the record's info, never the record, so a dropped scope can be
/// collected.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA1816:Dispose methods should call SuppressFinalize", Justification = "Closing a tracker is what ends its need for finalization; it is not IDisposable by design.")]
internal sealed class ScopeTracker
{
    private static readonly ConcurrentDictionary<long, OpenScopeInfo> Registry = new();

    // The tracked TaskScope whose body or child runs here: the parent of what is created here. Set only by tracked
    // scopes, so that nothing flows while tracking is off.
    private static readonly AsyncLocal<OpenScopeInfo?> CurrentScope = new();
    private static long _nextId;

    private readonly long _id;
    private int _closed;

    private ScopeTracker(OpenScopeInfo info)
    {
        Info = info;
        _id = Interlocked.Increment(ref _nextId);
        Registry[_id] = info;
    }

    ~ScopeTracker()
    {
        if (Registry.TryRemove(_id, out _))
        {
            ScopeDiagnostics.ReportLeak(Info);
        }
    }

    public OpenScopeInfo Info { get; }

    public static IReadOnlyCollection<OpenScopeInfo> Snapshot() => Registry.Values.ToArray();

    /// <summary>The tracked scope whose body or child runs in this flow, if any.</summary>
    public static OpenScopeInfo? Current => CurrentScope.Value;

    /// <summary>Makes <paramref name="scope"/> the parent of what this flow creates from now on: called at the start
    /// of a tracked scope's body and of each of its children (async methods, so that it ends with them).</summary>
    public static void EnterAsCurrent(OpenScopeInfo scope) => CurrentScope.Value = scope;

    /// <summary>A tracker when leak tracking is on, else null (and nothing is captured).</summary>
    public static ScopeTracker? StartIfTracking(string kind, string? name) =>
        ScopeDiagnostics.LeakTracking
            ? new ScopeTracker(new OpenScopeInfo(kind, name, DateTimeOffset.UtcNow, new StackTrace(2, fNeedFileInfo: true).ToString(), Current))
            : null;

    /// <summary>A tracker for a scope whose creation stack (and parent) were captured earlier, by
    /// <see cref="CaptureStackIfTracking"/> and <see cref="Current"/>: a lease handed over asynchronously shows where it
    /// was rented, not the thread that completed the rent.</summary>
    public static ScopeTracker Start(string kind, string? name, string creationStackTrace, OpenScopeInfo? parent) =>
        new(new OpenScopeInfo(kind, name, DateTimeOffset.UtcNow, creationStackTrace, parent));

    /// <summary>The stack from the caller on (a public method that will create a scope later, possibly on another
    /// thread) when leak tracking is on, else null (and nothing is captured).</summary>
    public static string? CaptureStackIfTracking() =>
        ScopeDiagnostics.LeakTracking ? new StackTrace(1, fNeedFileInfo: true).ToString() : null;

    /// <summary>Info for a scope that was not tracked: no creation stack.</summary>
    public static OpenScopeInfo Untracked(string kind, string? name, DateTimeOffset createdAt) => new(kind, name, createdAt, null);

    /// <summary>The scope closed: it is no longer open and never reported as a leak. Idempotent.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Registry.TryRemove(_id, out _);
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Reports the scope as leaked now (a lease still out after a pool drained) and closes it.</summary>
    public void ReportLeakAndClose()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Registry.TryRemove(_id, out _);
            GC.SuppressFinalize(this);
            ScopeDiagnostics.ReportLeak(Info);
        }
    }
}
