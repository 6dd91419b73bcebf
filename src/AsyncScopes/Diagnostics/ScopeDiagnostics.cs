namespace AsyncScopes;

/// <summary>
/// Process-wide diagnostics of scopes: leak tracking, failures nobody observed, and the name of the meter that
/// publishes the library's metrics.
/// </summary>
/// <remarks>
/// <para>Leak tracking records every <see cref="TaskScope"/>, <see cref="AsyncExitStack"/>, pool lease and work queue
/// created while it is on, with the stack trace of where it was created; it lists them in <see cref="OpenScopes"/>
/// until they are closed, and raises <see cref="LeakDetected"/> for one that is garbage collected without having
/// been closed. It costs a stack trace per scope: turn it on in tests and while hunting a leak. With it off, nothing
/// is captured and the hot paths pay nothing beyond a counter.</para>
/// <para>Metrics are published through <see cref="System.Diagnostics.Metrics"/> on the meter named
/// <see cref="MeterName"/> (OpenTelemetry picks them up with <c>AddMeter("AsyncScopes")</c>).</para>
/// </remarks>
public static class ScopeDiagnostics
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> that publishes the library's metrics.</summary>
    public const string MeterName = "AsyncScopes";

    /// <summary>
    /// The name of the <see cref="System.Diagnostics.ActivitySource"/> that traces the library: a span per
    /// <see cref="TaskScope"/>, and per wait of an <see cref="AsyncPool{T}"/> renter that had to wait
    /// (<c>AsyncPool.Wait</c>, tagged <c>asyncscopes.pool.name</c> and <c>asyncscopes.pool.wait.outcome</c>:
    /// <c>acquired</c>, <c>cancelled</c> or <c>failed</c>). OpenTelemetry picks it up with <c>AddSource("AsyncScopes")</c>. The span's parent is
    /// the span current where the scope was created; the scope's body and children run with the scope's span current.
    /// Its tags: <c>asyncscopes.scope.name</c>, <c>asyncscopes.scope.children.started</c>, <c>.failed</c> and
    /// <c>.cancelled</c>, <c>asyncscopes.scope.cancellation_reason</c> (when the scope was asked to stop) and
    /// <c>asyncscopes.scope.outcome</c> (<c>completed</c>, <c>stopped</c>, <c>cancelled</c>, <c>failed</c> or
    /// <c>timeout</c>); a failed scope's status is an error with its first failure's message. The span ends just
    /// before the join completes, and ending it leaves the closing thread's current span as it was. With no listener,
    /// or for a span the sampler drops, nothing is kept.
    /// </summary>
    public const string ActivitySourceName = "AsyncScopes";

    private static volatile bool _leakTracking = Environment.GetEnvironmentVariable("ASYNCSCOPES_LEAK_TRACKING") == "1";

    /// <summary>
    /// Whether scopes created from now on are tracked. Initially on when the environment variable
    /// <c>ASYNCSCOPES_LEAK_TRACKING</c> is <c>1</c>. Changing it affects only scopes created afterwards.
    /// </summary>
    public static bool LeakTracking
    {
        get => _leakTracking;
        set => _leakTracking = value;
    }

    /// <summary>
    /// A snapshot of the tracked scopes that are open now: those created while <see cref="LeakTracking"/> was on and
    /// not yet closed. Empty when tracking was never on.
    /// </summary>
    public static IReadOnlyCollection<OpenScopeInfo> OpenScopes => ScopeTracker.Snapshot();

    /// <summary>
    /// Writes the tree of the tracked scopes open now (Python's <c>asyncio pstree</c>): each scope under the
    /// <see cref="TaskScope"/> whose body or child created it (<see cref="OpenScopeInfo.Parent"/>), two spaces deeper,
    /// oldest first, one line each: its kind, its name and when it was created. A scope whose parent has closed is
    /// written at the top, saying so.
    /// </summary>
    /// <param name="writer">Where to write; the tree ends with a line break.</param>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is null.</exception>
    /// <remarks>The tree holds what <see cref="LeakTracking"/> recorded: only scopes created while it was on, with
    /// their parents known only when the parent was created while it was on as well. It is a snapshot: scopes open and
    /// close while it is written.</remarks>
    public static void WriteTree(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var open = ScopeTracker.Snapshot();
        if (open.Count == 0)
        {
            writer.WriteLine(LeakTracking ? "No scope is open." : "No scope is recorded: leak tracking (ScopeDiagnostics.LeakTracking) is off.");
            return;
        }

        var isOpen = open.ToHashSet(ReferenceEqualityComparer.Instance);
        var children = open
            .Where(scope => scope.Parent is not null && isOpen.Contains(scope.Parent))
            .ToLookup(scope => scope.Parent!, ReferenceEqualityComparer.Instance);
        foreach (var root in open.Where(scope => scope.Parent is null || !isOpen.Contains(scope.Parent)).OrderBy(scope => scope.CreatedAt))
        {
            Write(root, depth: 0, parentClosed: root.Parent is not null);
        }

        void Write(OpenScopeInfo scope, int depth, bool parentClosed)
        {
            writer.Write(new string(' ', depth * 2));
            writer.Write(scope.Kind);
            if (scope.Name is not null)
            {
                writer.Write($" '{scope.Name}'");
            }

            writer.Write(FormattableString.Invariant($", created {scope.CreatedAt:O}"));
            writer.WriteLine(parentClosed ? $" (its {scope.Parent!.Kind} has closed)" : string.Empty);
            foreach (var child in children[scope].OrderBy(child => child.CreatedAt))
            {
                Write(child, depth + 1, parentClosed: false);
            }
        }
    }

    /// <summary>
    /// Raised for a scope that was dropped without being closed: a tracked scope garbage collected while open, a
    /// pool lease collected without having been returned (tracked or not), or a lease still out when its pool
    /// finished draining. The sender is <see langword="null"/>.
    /// </summary>
    /// <remarks>Collected scopes are reported from the finalizer thread. An exception thrown by a handler is caught
    /// and ignored; the other handlers still run.</remarks>
    public static event EventHandler<ScopeLeakEventArgs>? LeakDetected;

    /// <summary>
    /// Raised once per failure that no one observed: a child of a <see cref="TaskScope"/> failed and the scope was
    /// disposed without <see cref="TaskScope.JoinAsync"/> having been called; a loser of a
    /// <see cref="TaskScope.RaceAsync{T}"/> that was won failed; a pool's reset, validation, destruction or background
    /// creation failed; a work queue's <see cref="WorkQueueOptions{T}.OnError"/> threw. The sender is
    /// <see langword="null"/>.
    /// </summary>
    /// <remarks>Handlers run synchronously on the thread where the failure was found (the one disposing a scope,
    /// returning a lease, or running a timer). An exception thrown by a handler is caught and ignored, so that it
    /// cannot break the operation that reported; the other handlers still run.</remarks>
    public static event EventHandler<UnobservedScopeFailureEventArgs>? UnobservedFailure;

    /// <summary>
    /// Raised once per child of a <see cref="TaskScope"/> with <see cref="TaskScopeOptions.StragglerTimeout"/> that is
    /// still running that long after the scope's token fired: the code that holds up a shutdown. The scope still waits
    /// for it. The sender is that <see cref="TaskScope"/>, so that its owner can tell its own stragglers apart.
    /// </summary>
    /// <remarks>Handlers run on the timer's thread. An exception thrown by a handler is caught and ignored; the other
    /// handlers still run.</remarks>
    public static event EventHandler<ScopeStragglerEventArgs>? Straggler;

    internal static void ReportStraggler(TaskScope scope, ScopeStragglerEventArgs straggler) => Raise(Straggler, scope, straggler);

    internal static void ReportUnobserved(string? scopeName, Exception exception) =>
        Raise(UnobservedFailure, null, new UnobservedScopeFailureEventArgs(scopeName, exception));

    internal static void ReportLeak(OpenScopeInfo scope) => Raise(LeakDetected, null, new ScopeLeakEventArgs(scope));

    private static void Raise<TArgs>(EventHandler<TArgs>? handlers, object? sender, TArgs args)
    {
        if (handlers is null)
        {
            return;
        }

        foreach (var handler in handlers.GetInvocationList())
        {
            try
            {
                ((EventHandler<TArgs>)handler)(sender, args);
            }
#pragma warning disable CA1031 // A diagnostics handler must not break a disposal or a finalizer.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }
}
