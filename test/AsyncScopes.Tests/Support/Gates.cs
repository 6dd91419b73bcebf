namespace AsyncScopes.Tests.Support;

/// <summary>The gates the concurrency tests wait on: no test waits for time to pass.</summary>
internal static class Gates
{
    /// <summary>A gate whose continuations run off the thread that opens it.</summary>
    public static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when <paramref name="token"/> is cancelled, off the thread that cancelled it.</summary>
    public static async Task WhenCancelled(CancellationToken token)
    {
        var cancelled = NewGate();
        using (token.Register(() => cancelled.TrySetResult()))
        {
            await cancelled.Task;
        }
    }

    /// <summary>Starts a child of <paramref name="scope"/> that runs until its token is cancelled, and returns it once
    /// it runs (within <paramref name="patience"/>): it then ends cancelled when the scope's token fires.</summary>
    public static async Task<Task> StartUntilCancelledAsync(TaskScope scope, TimeSpan patience)
    {
        var running = NewGate();
        var child = scope.Start(async token =>
        {
            running.SetResult();
            await Task.Delay(Timeout.Infinite, token);
        });
        await running.Task.WaitAsync(patience);
        return child;
    }

    /// <summary>Waits, within <paramref name="patience"/>, for <paramref name="task"/> to complete in any way.</summary>
    public static async Task Settled(Task task, TimeSpan patience)
    {
        await task.WaitAsync(patience).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        Assert.True(task.IsCompleted, $"The task did not complete within {patience}.");
    }
}
