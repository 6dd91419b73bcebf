using Microsoft.Extensions.Time.Testing;
using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Tasks;

/// <summary><see cref="TaskScopeOptions.StragglerTimeout"/>: a child that ignores cancellation is reported, once.</summary>
public sealed class TaskScopeStragglerTests
{
    // Bounds every wait on the library, so that a bug fails the test instead of hanging the run.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan StragglerTimeout = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_child_that_ignores_its_token_is_reported_once_by_name_and_still_awaited()
    {
        var time = new FakeTimeProvider();
        const string name = "connections";
        var scope = new TaskScope(new TaskScopeOptions { Name = name, StragglerTimeout = StragglerTimeout, TimeProvider = time });
        var release = NewGate();
        var running = NewGate();
        _ = scope.Start(
            async _ =>
            {
                running.SetResult();
                await release.Task; // ignores the token
            },
            "connection 42");
        var wellBehaved = scope.Start(async token => await WhenCancelled(token), "well-behaved");
        await running.Task.WaitAsync(Patience);
        using var reports = new Reports(scope);

        scope.Stop(TimeSpan.Zero);
        var join = scope.JoinAsync();
        await wellBehaved.WaitAsync(Patience); // finished in time: never a straggler
        time.Advance(StragglerTimeout - TimeSpan.FromTicks(1));
        Assert.Empty(reports.Snapshot());
        time.Advance(TimeSpan.FromTicks(1));
        time.Advance(StragglerTimeout * 3);

        var report = Assert.Single(reports.Snapshot());
        Assert.Equal(name, report.ScopeName);
        Assert.Equal("connection 42", report.ChildName);
        Assert.Equal(ScopeCancellationReason.Stop, report.Reason);
        Assert.Equal(StragglerTimeout, report.Waited);
        Assert.False(join.IsCompleted);
        release.SetResult();
        await join.WaitAsync(Patience);
    }

    [Fact]
    public async Task A_scope_that_closes_in_time_reports_nothing()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { StragglerTimeout = StragglerTimeout, TimeProvider = time });
        _ = scope.Start(async token => await WhenCancelled(token), "quick");
        using var reports = new Reports(scope);

        scope.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scope.JoinAsync().WaitAsync(Patience));
        time.Advance(StragglerTimeout * 2);

        Assert.Empty(reports.Snapshot());
    }

    [Fact]
    public async Task Without_a_straggler_timeout_nothing_is_reported()
    {
        var time = new FakeTimeProvider();
        var scope = new TaskScope(new TaskScopeOptions { TimeProvider = time });
        var release = NewGate();
        _ = scope.Start(_ => release.Task, "stubborn");
        using var reports = new Reports(scope);

        scope.Cancel();
        time.Advance(TimeSpan.FromHours(1));

        Assert.Empty(reports.Snapshot());
        release.SetResult();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scope.JoinAsync().WaitAsync(Patience));
    }

    [Fact]
    public void A_negative_straggler_timeout_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TaskScope(new TaskScopeOptions { StragglerTimeout = TimeSpan.FromSeconds(-1) }));
    }

    /// <summary>The straggler reports of one scope, the sender of its reports: other tests' scopes report through the
    /// same event.</summary>
    private sealed class Reports : IDisposable
    {
        private readonly TaskScope _scope;
        private readonly List<ScopeStragglerEventArgs> _reports = [];

        public Reports(TaskScope scope)
        {
            _scope = scope;
            ScopeDiagnostics.Straggler += OnStraggler;
        }

        public List<ScopeStragglerEventArgs> Snapshot()
        {
            lock (_reports)
            {
                return [.. _reports];
            }
        }

        public void Dispose() => ScopeDiagnostics.Straggler -= OnStraggler;

        private void OnStraggler(object? sender, ScopeStragglerEventArgs e)
        {
            if (ReferenceEquals(sender, _scope))
            {
                lock (_reports)
                {
                    _reports.Add(e);
                }
            }
        }
    }
}
