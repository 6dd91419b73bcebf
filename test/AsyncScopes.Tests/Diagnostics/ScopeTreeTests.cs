using static AsyncScopes.Tests.Support.Gates;

namespace AsyncScopes.Tests.Diagnostics;

/// <summary><see cref="ScopeDiagnostics.WriteTree"/>: the tracked scopes open now, each under the scope that created it.</summary>
[Collection("LeakTracking")]
public sealed class ScopeTreeTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Each_scope_is_written_under_the_task_scope_whose_body_or_child_created_it()
    {
        string outer = NewName("outer"), inner = NewName("inner"), pool = NewName("pool");
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            await using var connections = new AsyncPool<object>(_ => ValueTask.FromResult(new object()), new AsyncPoolOptions<object> { Name = pool });
            var built = NewGate();
            var release = NewGate();
            var running = TaskScope.RunAsync(
                scope =>
                {
                    _ = scope.Start(async token =>
                    {
                        await using var stack = new AsyncExitStack();
                        await TaskScope.RunAsync(
                            innerScope =>
                            {
                                _ = innerScope.Start(async innerToken =>
                                {
                                    await using var lease = await connections.RentAsync(innerToken);
                                    built.SetResult();
                                    await release.Task;
                                });
                                return Task.CompletedTask;
                            },
                            token,
                            new TaskScopeOptions { Name = inner });
                    });
                    return Task.CompletedTask;
                },
                options: new TaskScopeOptions { Name = outer });
            await built.Task.WaitAsync(Patience);

            var lines = Tree();
            release.SetResult();
            await running.WaitAsync(Patience);

            int top = lines.FindIndex(line => line.StartsWith($"TaskScope '{outer}', created ", StringComparison.Ordinal));
            Assert.True(top >= 0, string.Join(Environment.NewLine, lines));
            var subtree = lines.Skip(top + 1).TakeWhile(line => line.StartsWith(' ')).ToList();
            Assert.Contains(subtree, line => line.StartsWith("  AsyncExitStack, created ", StringComparison.Ordinal));
            int innerAt = subtree.FindIndex(line => line.StartsWith($"  TaskScope '{inner}', created ", StringComparison.Ordinal));
            Assert.True(innerAt >= 0, string.Join(Environment.NewLine, lines));
            Assert.StartsWith($"    PoolLease '{pool}', created ", subtree[innerAt + 1], StringComparison.Ordinal);
            Assert.DoesNotContain(Tree(), line => line.Contains(outer, StringComparison.Ordinal));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public async Task A_scope_that_outlives_its_parent_is_written_at_the_top_saying_so()
    {
        string outer = NewName("outer"), escaped = NewName("escaped");
        ScopeDiagnostics.LeakTracking = true;
        try
        {
            TaskScope? kept = null;
            await TaskScope.RunAsync(
                scope =>
                {
                    _ = scope.Start(_ =>
                    {
                        kept = new TaskScope(new TaskScopeOptions { Name = escaped });
                        return Task.CompletedTask;
                    });
                    return Task.CompletedTask;
                },
                options: new TaskScopeOptions { Name = outer }).WaitAsync(Patience);

            var lines = Tree();
            await kept!.JoinAsync().WaitAsync(Patience);

            Assert.Contains($"TaskScope '{escaped}', created ", Assert.Single(lines, line => line.Contains(escaped, StringComparison.Ordinal)), StringComparison.Ordinal);
            Assert.EndsWith(" (its TaskScope has closed)", lines.Single(line => line.Contains(escaped, StringComparison.Ordinal)), StringComparison.Ordinal);
            Assert.False(lines.Single(line => line.Contains(escaped, StringComparison.Ordinal)).StartsWith(' '));
            Assert.DoesNotContain(lines, line => line.Contains(outer, StringComparison.Ordinal));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
    }

    [Fact]
    public void A_null_writer_is_rejected()
    {
        Assert.Throws<ArgumentNullException>("writer", () => ScopeDiagnostics.WriteTree(null!));
    }

    private static List<string> Tree()
    {
        using var writer = new StringWriter();
        ScopeDiagnostics.WriteTree(writer);
        return [.. writer.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries)];
    }

    private static string NewName(string what) => $"{what}-{Guid.NewGuid():N}";
}
