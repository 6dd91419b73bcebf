using System.Runtime.InteropServices;

namespace AsyncScopes;

/// <summary>
/// Holds one count of a <see cref="SemaphoreSlim"/> taken by
/// <see cref="SemaphoreSlimExtensions.LockAsync(SemaphoreSlim, CancellationToken)"/>, and gives it back when disposed.
/// </summary>
/// <remarks>
/// This is a struct so that taking an uncontended lock allocates nothing. Dispose it exactly once, which a
/// <c>using</c> or <c>await using</c> statement does; disposing it again, or disposing a copy, releases the semaphore
/// again. Disposing <c>default(SemaphoreReleaser)</c> does nothing.
/// </remarks>
[StructLayout(LayoutKind.Auto)]
public readonly struct SemaphoreReleaser : IDisposable, IAsyncDisposable
{
    private readonly SemaphoreSlim? _semaphore;

    internal SemaphoreReleaser(SemaphoreSlim semaphore) => _semaphore = semaphore;

    /// <summary>Releases the semaphore once.</summary>
    /// <exception cref="SemaphoreFullException">The semaphore was released more often than it was entered.</exception>
    public void Dispose() => _semaphore?.Release();

    /// <summary>Releases the semaphore once; completes synchronously.</summary>
    /// <returns>A completed task.</returns>
    /// <exception cref="SemaphoreFullException">The semaphore was released more often than it was entered.</exception>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
