namespace AsyncScopes;

/// <summary>Scoped locking over <see cref="SemaphoreSlim"/>.</summary>
public static class SemaphoreSlimExtensions
{
    /// <summary>
    /// Waits for <paramref name="semaphore"/> and returns a releaser that releases it once when disposed:
    /// <c>await using (await gate.LockAsync(ct)) { ... }</c> releases exactly once on every path.
    /// </summary>
    /// <param name="semaphore">The semaphore to enter.</param>
    /// <param name="cancellationToken">Cancels the wait. A cancelled wait throws
    /// <see cref="OperationCanceledException"/> and holds nothing, so there is nothing to release; an already-cancelled
    /// token fails even when the semaphore is free.</param>
    /// <returns>The releaser; completes synchronously, without allocating, when the semaphore is free.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="semaphore"/> is null.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="semaphore"/> was disposed.</exception>
    public static ValueTask<SemaphoreReleaser> LockAsync(this SemaphoreSlim semaphore, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(semaphore);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<SemaphoreReleaser>(cancellationToken);
        }

        if (semaphore.Wait(0, CancellationToken.None))
        {
            return new(new SemaphoreReleaser(semaphore));
        }

        return WaitAsync(semaphore, cancellationToken);

        static async ValueTask<SemaphoreReleaser> WaitAsync(SemaphoreSlim semaphore, CancellationToken cancellationToken)
        {
            await semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
            return new SemaphoreReleaser(semaphore);
        }
    }
}
