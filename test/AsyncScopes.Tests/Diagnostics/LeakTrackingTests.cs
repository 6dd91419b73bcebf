using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Diagnostics;

// LeakTracking, OpenScopes and LeakDetected are process-wide: every test that turns tracking on or off is here, in a
// collection that runs alone. Each test finds its own scopes by a unique name (or, for the nameless AsyncExitStack, by
// the unique name of the method that created it).
[Collection("LeakTracking")]
public sealed class LeakTrackingTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private const int MaxCollections = 20;

    private static string NewName() => "scope-" + Guid.NewGuid().ToString("N");

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static OpenScopeInfo[] Listed(string kind, string name) =>
        [.. ScopeDiagnostics.OpenScopes.Where(s => s.Kind == kind && s.Name == name)];

    private static OpenScopeInfo[] ListedExitStacks(string creatingMethod) =>
        [.. ScopeDiagnostics.OpenScopes.Where(s => s.Kind == "AsyncExitStack" && CreatedIn(s, creatingMethod))];

    private static bool CreatedIn(OpenScopeInfo scope, string method) =>
        scope.CreationStackTrace?.Contains(method + "(", StringComparison.Ordinal) == true;

    // --- Open scopes are listed until closed ----------------------------------------------------------------------

    [Fact]
    public async Task An_open_TaskScope_is_listed_with_its_kind_name_and_creation_stack_until_it_is_joined()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            string name = NewName();
            var before = DateTimeOffset.UtcNow;
            var scope = new TaskScope(new TaskScopeOptions { Name = name });

            var listed = Assert.Single(Listed("TaskScope", name));
            Assert.Equal("TaskScope", listed.Kind);
            Assert.Equal(name, listed.Name);
            Assert.InRange(listed.CreatedAt, before, DateTimeOffset.UtcNow);
            Assert.NotNull(listed.CreationStackTrace);
            Assert.Contains(nameof(An_open_TaskScope_is_listed_with_its_kind_name_and_creation_stack_until_it_is_joined), listed.CreationStackTrace, StringComparison.Ordinal);

            await scope.JoinAsync().WaitAsync(Patience);

            Assert.Empty(Listed("TaskScope", name));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task A_disposed_TaskScope_is_no_longer_listed()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            string name = NewName();
            var scope = new TaskScope(new TaskScopeOptions { Name = name });
            Assert.Single(Listed("TaskScope", name));

            await scope.DisposeAsync().AsTask().WaitAsync(Patience);

            Assert.Empty(Listed("TaskScope", name));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task A_TaskScope_whose_join_completed_when_its_last_child_ended_is_no_longer_listed()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            string name = NewName();
            var scope = new TaskScope(new TaskScopeOptions { Name = name });
            var release = NewGate();
            _ = scope.Start(async _ => await release.Task);
            var join = scope.JoinAsync();
            Assert.False(join.IsCompleted);

            // Sees OpenScopes at the very moment the join task completes, on the thread that completes it.
            var probe = new ProbeScheduler<(bool JoinCompleted, int Listed)>(() => (join.IsCompleted, Listed("TaskScope", name).Length));
            var continuation = join.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, probe);

            release.SetResult();
            await join.WaitAsync(Patience);
            await continuation.WaitAsync(Patience);

            var (joinCompleted, listedWhenJoinCompleted) = await probe.Observed.WaitAsync(Patience);
            Assert.True(joinCompleted);
            Assert.True(
                listedWhenJoinCompleted == 0,
                "The join task completed while the scope was still listed in ScopeDiagnostics.OpenScopes: code that awaits JoinAsync can still see it open.");
            Assert.Empty(Listed("TaskScope", name));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task An_open_AsyncExitStack_is_listed_with_its_kind_and_creation_stack_until_it_is_disposed()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            var stack = CreateListedExitStack();

            var listed = Assert.Single(ListedExitStacks(nameof(CreateListedExitStack)));
            Assert.Equal("AsyncExitStack", listed.Kind);
            Assert.Null(listed.Name);
            Assert.Contains(nameof(An_open_AsyncExitStack_is_listed_with_its_kind_and_creation_stack_until_it_is_disposed), listed.CreationStackTrace, StringComparison.Ordinal);

            stack.Complete();
            await stack.DisposeAsync().AsTask().WaitAsync(Patience);

            Assert.Empty(ListedExitStacks(nameof(CreateListedExitStack)));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task A_PopAll_that_throws_leaves_no_stack_open()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            var closed = new AsyncExitStack();
            closed.Complete();
            await closed.DisposeAsync().AsTask().WaitAsync(Patience);
            var unwinding = new AsyncExitStack();
            Exception? duringUnwinding = null;
            unwinding.Defer(() =>
            {
                duringUnwinding = Record.Exception(() => PopAllOf(unwinding));
                return ValueTask.CompletedTask;
            });

            Assert.Throws<InvalidOperationException>(() => PopAllOf(closed));
            await unwinding.DisposeAsync().AsTask().WaitAsync(Patience);

            Assert.IsType<InvalidOperationException>(duringUnwinding);
            Assert.Empty(ListedExitStacks(nameof(PopAllOf)));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task The_stack_PopAll_returns_is_listed_until_it_is_disposed()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            var stack = new AsyncExitStack();
            stack.Push(new NothingToDispose());

            var popped = PopAllOf(stack);

            Assert.Single(ListedExitStacks(nameof(PopAllOf)));
            popped.Complete();
            await popped.DisposeAsync().AsTask().WaitAsync(Patience);
            Assert.Empty(ListedExitStacks(nameof(PopAllOf)));
            stack.Complete();
            await stack.DisposeAsync().AsTask().WaitAsync(Patience);
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task A_pool_lease_is_listed_with_the_pool_name_and_creation_stack_until_it_is_returned()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            string name = NewName();
            await using var pool = new AsyncPool<object>(_ => ValueTask.FromResult(new object()), new AsyncPoolOptions<object> { Name = name });

            var lease = await pool.RentAsync().AsTask().WaitAsync(Patience);

            var listed = Assert.Single(Listed("PoolLease", name));
            Assert.Equal("PoolLease", listed.Kind);
            Assert.Equal(name, listed.Name);
            Assert.Contains(nameof(A_pool_lease_is_listed_with_the_pool_name_and_creation_stack_until_it_is_returned), listed.CreationStackTrace, StringComparison.Ordinal);

            await lease.DisposeAsync();
            Assert.Empty(Listed("PoolLease", name));

            // A second lease of the same (now idle) item is listed anew, and leaves again.
            var second = await pool.RentAsync().AsTask().WaitAsync(Patience);
            Assert.Single(Listed("PoolLease", name));
            await second.DisposeAsync();
            Assert.Empty(Listed("PoolLease", name));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Theory]
    [InlineData("waited for a returned item")]
    [InlineData("created by an asynchronous factory")]
    [InlineData("validated asynchronously")]
    public async Task A_lease_rented_asynchronously_is_listed_with_the_stack_of_the_rent_call(string how)
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            string name = NewName();
            var factoryGate = NewGate();
            var validationGate = NewGate();
            var pool = new AsyncPool<object>(
                async _ =>
                {
                    if (how == "created by an asynchronous factory")
                    {
                        await factoryGate.Task.ConfigureAwait(false);
                    }

                    return new object();
                },
                new AsyncPoolOptions<object>
                {
                    Name = name,
                    MaxSize = 1,
                    Validate = async (_, _) =>
                    {
                        await validationGate.Task.ConfigureAwait(false);
                        return true;
                    },
                });
            PoolLease<object>? held = null;
            if (how == "waited for a returned item")
            {
                held = await pool.RentAsync().AsTask().WaitAsync(Patience);
            }
            else if (how == "validated asynchronously")
            {
                await (await pool.RentAsync().AsTask().WaitAsync(Patience)).DisposeAsync(); // idle now: validated when rented
            }

            var renting = RentFromOneMethod(pool);
            Assert.False(renting.IsCompleted);
            if (held is { } lease)
            {
                Assert.Equal(1, pool.Statistics.Waiters);
                await lease.DisposeAsync();
            }

            factoryGate.SetResult();
            validationGate.SetResult();
            var rented = await renting.WaitAsync(Patience);

            var listed = Assert.Single(Listed("PoolLease", name));
            Assert.True(CreatedIn(listed, nameof(RentFromOneMethod)), $"The lease does not show where it was rented:{Environment.NewLine}{listed.CreationStackTrace}");
            Assert.Contains(nameof(A_lease_rented_asynchronously_is_listed_with_the_stack_of_the_rent_call), listed.CreationStackTrace, StringComparison.Ordinal);
            await rented.DisposeAsync();
            Assert.Empty(Listed("PoolLease", name));
            await pool.DisposeAsync().AsTask().WaitAsync(Patience);
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task An_open_WorkQueue_is_listed_with_its_kind_name_and_creation_stack_until_it_is_completed()
    {
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            string name = NewName();
            var queue = new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Name = name, Workers = 2 });
            Assert.True(queue.TryEnqueue(1));

            var listed = Assert.Single(Listed("WorkQueue", name));
            Assert.Equal("WorkQueue", listed.Kind);
            Assert.Equal(name, listed.Name);
            Assert.Contains(nameof(An_open_WorkQueue_is_listed_with_its_kind_name_and_creation_stack_until_it_is_completed), listed.CreationStackTrace, StringComparison.Ordinal);
            Assert.Empty(Listed("TaskScope", name)); // its workers' scope is part of it, not listed on its own

            var result = await queue.CompleteAsync().WaitAsync(Patience);

            Assert.Equal(1, result.Completed);
            Assert.Empty(Listed("WorkQueue", name));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    // --- Dropped scopes are reported once collected ------------------------------------------------------------------

    [Fact]
    public void A_TaskScope_dropped_without_being_closed_is_reported_once_collected()
    {
        string name = NewName();
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Name == name)
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            DropTaskScope(name);

            CollectUntil(() => !reports.IsEmpty);
            CollectUntil(() => false, times: 3); // a second report would come now

            var leaked = Assert.Single(reports);
            Assert.Equal("TaskScope", leaked.Kind);
            Assert.Equal(name, leaked.Name);
            Assert.Contains(nameof(DropTaskScope), leaked.CreationStackTrace, StringComparison.Ordinal);
            Assert.Contains(nameof(A_TaskScope_dropped_without_being_closed_is_reported_once_collected), leaked.CreationStackTrace, StringComparison.Ordinal);
            Assert.Empty(Listed("TaskScope", name));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    [Fact]
    public void An_AsyncExitStack_dropped_without_being_closed_is_reported_once_collected()
    {
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Kind == "AsyncExitStack" && CreatedIn(e.Scope, nameof(DropAsyncExitStack)))
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            DropAsyncExitStack();

            CollectUntil(() => !reports.IsEmpty);
            CollectUntil(() => false, times: 3);

            var leaked = Assert.Single(reports);
            Assert.Equal("AsyncExitStack", leaked.Kind);
            Assert.Null(leaked.Name);
            Assert.Contains(nameof(An_AsyncExitStack_dropped_without_being_closed_is_reported_once_collected), leaked.CreationStackTrace, StringComparison.Ordinal);
            Assert.Empty(ListedExitStacks(nameof(DropAsyncExitStack)));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    [Fact]
    public async Task A_tracked_lease_dropped_without_being_returned_is_reported_once_with_its_creation_stack_and_its_place_reclaimed()
    {
        string name = NewName();
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Name == name)
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            var pool = new AsyncPool<object>(_ => ValueTask.FromResult(new object()), new AsyncPoolOptions<object> { Name = name, MaxSize = 1 });
            DropLease(pool);
            var listed = Assert.Single(Listed("PoolLease", name));
            Assert.True(CreatedIn(listed, nameof(DropLease)), listed.CreationStackTrace);
            Assert.Empty(reports);

            CollectUntil(() => !reports.IsEmpty);
            CollectUntil(() => false, times: 3); // a second report would come now

            var leaked = Assert.Single(reports);
            Assert.Equal("PoolLease", leaked.Kind);
            Assert.Equal(name, leaked.Name);
            Assert.True(CreatedIn(leaked, nameof(DropLease)), leaked.CreationStackTrace);
            Assert.Contains(nameof(A_tracked_lease_dropped_without_being_returned_is_reported_once_with_its_creation_stack_and_its_place_reclaimed), leaked.CreationStackTrace, StringComparison.Ordinal);
            Assert.Empty(Listed("PoolLease", name));

            // The place of the dropped lease is back: the pool, of size 1, lends an item again.
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
            var lease = await pool.RentAsync().AsTask().WaitAsync(Patience);
            await lease.DisposeAsync();
            await pool.DisposeAsync().AsTask().WaitAsync(Patience);
            Assert.Single(reports);
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    [Fact]
    public async Task A_closed_TaskScope_is_never_reported_as_leaked()
    {
        string name = NewName();
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Name == name)
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            await JoinTaskScopeAsync(name);

            CollectUntil(() => false, times: 3);

            Assert.Empty(reports);
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    [Fact]
    public async Task A_tracked_lease_still_out_when_its_pool_drained_is_reported_with_its_creation_stack()
    {
        string name = NewName();
        var time = new FakeTimeProvider();
        var drainTimeout = TimeSpan.FromSeconds(5);
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Name == name)
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            var pool = new AsyncPool<object>(
                _ => ValueTask.FromResult(new object()),
                new AsyncPoolOptions<object> { Name = name, DrainTimeout = drainTimeout, TimeProvider = time });
            var lease = await pool.RentAsync().AsTask().WaitAsync(Patience);

            var disposal = pool.DisposeAsync().AsTask();
            Assert.False(disposal.IsCompleted);
            Assert.Empty(reports);
            time.Advance(drainTimeout);
            await disposal.WaitAsync(Patience);

            var leaked = Assert.Single(reports);
            Assert.Equal("PoolLease", leaked.Kind);
            Assert.Equal(name, leaked.Name);
            Assert.Contains(nameof(A_tracked_lease_still_out_when_its_pool_drained_is_reported_with_its_creation_stack), leaked.CreationStackTrace, StringComparison.Ordinal);
            Assert.Empty(Listed("PoolLease", name));

            await lease.DisposeAsync(); // late: the item is destroyed, nothing more is reported
            Assert.Single(reports);
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    // --- Tracking off ---------------------------------------------------------------------------------------------------

    [Fact]
    public async Task With_tracking_off_an_open_scope_is_not_listed()
    {
        ScopeDiagnostics.LeakTracking = false;
        string name = NewName();

        // This collection runs alone: nothing else opens an exit stack meanwhile, and the nameless one is found by count.
        int exitStacksBefore = ScopeDiagnostics.OpenScopes.Count(s => s.Kind == "AsyncExitStack");
        var stack = new AsyncExitStack();
        var scope = new TaskScope(new TaskScopeOptions { Name = name });
        var queue = new WorkQueue<int>((_, _) => Task.CompletedTask, new WorkQueueOptions<int> { Name = name, Workers = 1 });
        var pool = new AsyncPool<object>(_ => ValueTask.FromResult(new object()), new AsyncPoolOptions<object> { Name = name });
        var lease = await pool.RentAsync().AsTask().WaitAsync(Patience);
        try
        {
            Assert.False(ScopeDiagnostics.LeakTracking);
            Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, s => s.Name == name);
            Assert.Equal(exitStacksBefore, ScopeDiagnostics.OpenScopes.Count(s => s.Kind == "AsyncExitStack"));
        }
        finally
        {
            await lease.DisposeAsync();
            await pool.DisposeAsync().AsTask().WaitAsync(Patience);
            stack.Complete();
            await stack.DisposeAsync().AsTask().WaitAsync(Patience);
            await scope.JoinAsync().WaitAsync(Patience);
            await queue.CompleteAsync().WaitAsync(Patience);
        }
    }

    [Fact]
    public void With_tracking_off_a_dropped_lease_is_still_reported_when_collected_but_without_a_creation_stack()
    {
        ScopeDiagnostics.LeakTracking = false;
        string name = NewName();
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Name == name)
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        try
        {
            var pool = new AsyncPool<object>(_ => ValueTask.FromResult(new object()), new AsyncPoolOptions<object> { Name = name, MaxSize = 1 });
            DropLease(pool);
            Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, s => s.Name == name);

            CollectUntil(() => !reports.IsEmpty);
            CollectUntil(() => false, times: 3);

            var leaked = Assert.Single(reports);
            Assert.Equal("PoolLease", leaked.Kind);
            Assert.Null(leaked.CreationStackTrace);
            Assert.Equal(new PoolStatistics(Size: 0, Idle: 0, InUse: 0, Waiters: 0, Created: 1, Destroyed: 1), pool.Statistics);
        }
        finally
        {
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    [Fact]
    public async Task With_tracking_off_a_leased_item_still_out_at_drain_is_reported_without_a_creation_stack()
    {
        ScopeDiagnostics.LeakTracking = false;
        string name = NewName();
        var time = new FakeTimeProvider();
        var drainTimeout = TimeSpan.FromSeconds(5);
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Name == name)
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        try
        {
            var pool = new AsyncPool<object>(
                _ => ValueTask.FromResult(new object()),
                new AsyncPoolOptions<object> { Name = name, DrainTimeout = drainTimeout, TimeProvider = time });
            var lease = await pool.RentAsync().AsTask().WaitAsync(Patience);
            Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, s => s.Name == name);

            var disposal = pool.DisposeAsync().AsTask();
            time.Advance(drainTimeout);
            await disposal.WaitAsync(Patience);

            var leaked = Assert.Single(reports);
            Assert.Equal("PoolLease", leaked.Kind);
            Assert.Equal(name, leaked.Name);
            Assert.Null(leaked.CreationStackTrace);
            await lease.DisposeAsync();
        }
        finally
        {
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    [Fact]
    public void With_tracking_off_a_dropped_TaskScope_is_not_reported()
    {
        ScopeDiagnostics.LeakTracking = false;
        string name = NewName();
        var reports = new ConcurrentQueue<OpenScopeInfo>();
        void OnLeak(object? sender, ScopeLeakEventArgs e)
        {
            if (e.Scope.Name == name)
            {
                reports.Enqueue(e.Scope);
            }
        }

        ScopeDiagnostics.LeakDetected += OnLeak;
        try
        {
            DropTaskScope(name);
            Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, s => s.Name == name);

            CollectUntil(() => false, times: 3);

            Assert.Empty(reports);
        }
        finally
        {
            ScopeDiagnostics.LeakDetected -= OnLeak;
        }
    }

    // --- Helpers --------------------------------------------------------------------------------------------------------

    private static void CollectUntil(Func<bool> done, int times = MaxCollections)
    {
        for (int i = 0; i < times && !done(); i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Task<PoolLease<object>> RentFromOneMethod(AsyncPool<object> pool) => pool.RentAsync().AsTask();

    // Rents in a frame of its own, so that nothing in the test's frame keeps the lease reachable.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropLease(AsyncPool<object> pool)
    {
        var rent = pool.RentAsync();
        if (rent.IsCompletedSuccessfully)
        {
            Assert.NotNull(rent.Result.Value);
            return;
        }

        Assert.Fail("A rent from an empty pool with a synchronous factory did not complete synchronously.");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static AsyncExitStack CreateListedExitStack() => new();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static AsyncExitStack PopAllOf(AsyncExitStack stack) => stack.PopAll();

    private sealed class NothingToDispose : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

#pragma warning disable ASC0008 // These two leak on purpose: the tests find what they dropped.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropTaskScope(string name) => _ = new TaskScope(new TaskScopeOptions { Name = name });

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropAsyncExitStack() => _ = new AsyncExitStack();
#pragma warning restore ASC0008

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Task JoinTaskScopeAsync(string name) =>
        new TaskScope(new TaskScopeOptions { Name = name }).JoinAsync().WaitAsync(Patience);
}
