namespace AsyncScopes.Tests.Support;

/// <summary>
/// A <see cref="SynchronizationContext"/> that stands for a caller's UI thread. The library awaits with
/// <c>ConfigureAwait(false)</c>: none of its continuations may be sent to a context like this one, or a caller that
/// blocks on its thread would deadlock. <see cref="Post"/> counts what was sent, then runs it on the thread pool, so
/// that a wrong continuation is seen, but still runs.
/// </summary>
/// <remarks>
/// Drive the work with <see cref="RunStepsAsync"/>: each step runs on one thread-pool thread with no context, so that a
/// continuation that does not ask for a context runs inline, on that thread, up to its next await. The test's
/// callbacks call <see cref="MakeCurrent"/> just before they hand back work still pending, as code running on a UI
/// thread would: whatever the library awaits next, it awaits with this context current.
/// </remarks>
internal sealed class CallerContext : SynchronizationContext
{
    private int _posts;

    /// <summary>How many continuations were sent to this context.</summary>
    public int Posts => Volatile.Read(ref _posts);

    /// <summary>Makes this the calling thread's context, until the step it runs in ends.</summary>
    public void MakeCurrent() => SetSynchronizationContext(this);

    /// <summary>What code on a UI thread hands back: <paramref name="work"/>, still pending, with this context current.</summary>
    public Task Pending(Task work)
    {
        MakeCurrent();
        return work;
    }

    /// <inheritdoc cref="Pending(Task)"/>
    public Task<T> Pending<T>(Task<T> work)
    {
        MakeCurrent();
        return work;
    }

    public override void Post(SendOrPostCallback d, object? state)
    {
        Interlocked.Increment(ref _posts);
        ThreadPool.UnsafeQueueUserWorkItem(static work => work.Callback(work.State), (Callback: d, State: state), preferLocal: false);
    }

    public override void Send(SendOrPostCallback d, object? state)
    {
        Interlocked.Increment(ref _posts);
        d(state);
    }

    public override SynchronizationContext CreateCopy() => this;

    /// <summary>
    /// Runs <paramref name="steps"/> one after the other on one thread-pool thread, each with no context: what a step
    /// completes resumes inline, on that thread, unless it was sent to a context.
    /// </summary>
    public static Task RunStepsAsync(params Action[] steps) => Task.Run(() =>
    {
        try
        {
            foreach (var step in steps)
            {
                SetSynchronizationContext(null);
                step();
            }
        }
        finally
        {
            SetSynchronizationContext(null);
        }
    });
}
