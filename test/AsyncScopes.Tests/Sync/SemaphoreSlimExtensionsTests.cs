namespace AsyncScopes.Tests.Sync;

// Every semaphore here is new SemaphoreSlim(1, 1): a release too many throws SemaphoreFullException.
public sealed class SemaphoreSlimExtensionsTests
{
    [Fact]
    public async Task Uncontended_lock_completes_synchronously_and_takes_the_count()
    {
        using var semaphore = new SemaphoreSlim(1, 1);

        var locking = semaphore.LockAsync();

        Assert.True(locking.IsCompletedSuccessfully);
        Assert.Equal(0, semaphore.CurrentCount);

        var releaser = await locking;
        releaser.Dispose();
    }

    [Fact]
    public async Task Dispose_releases_the_count_exactly_once()
    {
        using var semaphore = new SemaphoreSlim(1, 1);

        var releaser = await semaphore.LockAsync();
        Assert.Equal(0, semaphore.CurrentCount);

        releaser.Dispose();
        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task DisposeAsync_releases_the_count_exactly_once_and_completes_synchronously()
    {
        using var semaphore = new SemaphoreSlim(1, 1);

        var releaser = await semaphore.LockAsync();
        Assert.Equal(0, semaphore.CurrentCount);

        var disposing = releaser.DisposeAsync();

        Assert.True(disposing.IsCompletedSuccessfully);
        Assert.Equal(1, semaphore.CurrentCount);
        await disposing;
    }

    [Fact]
    public async Task Await_using_holds_the_count_inside_the_block_and_releases_it_exactly_once_at_the_end()
    {
        using var semaphore = new SemaphoreSlim(1, 1);

        await using (await semaphore.LockAsync())
        {
            Assert.Equal(0, semaphore.CurrentCount);
        }

        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task Using_statement_holds_the_count_inside_the_block_and_releases_it_exactly_once_at_the_end()
    {
        using var semaphore = new SemaphoreSlim(1, 1);

        using (await semaphore.LockAsync())
        {
            Assert.Equal(0, semaphore.CurrentCount);
        }

        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task Await_using_releases_the_count_exactly_once_when_the_block_throws()
    {
        using var semaphore = new SemaphoreSlim(1, 1);
        var thrown = new InvalidOperationException("failed while holding the lock");

        var exception = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await using (await semaphore.LockAsync())
            {
                Assert.Equal(0, semaphore.CurrentCount);
                throw thrown;
            }
        });

        Assert.Same(thrown, exception);
        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task Contended_waiter_completes_only_after_the_holder_releases()
    {
        using var semaphore = new SemaphoreSlim(1, 1);
        var first = await semaphore.LockAsync();

        var waiting = semaphore.LockAsync().AsTask();
        Assert.False(waiting.IsCompleted);
        Assert.Equal(0, semaphore.CurrentCount);

        first.Dispose();
        var second = await waiting;

        // The count went from the first holder to the waiter.
        Assert.Equal(0, semaphore.CurrentCount);

        second.Dispose();
        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task Cancelled_wait_throws_OperationCanceledException_and_leaves_the_count_untouched()
    {
        using var semaphore = new SemaphoreSlim(1, 1);
        using var cancellation = new CancellationTokenSource();
        var holder = await semaphore.LockAsync();

        var waiting = semaphore.LockAsync(cancellation.Token).AsTask();
        Assert.False(waiting.IsCompleted);

        await cancellation.CancelAsync();

        var exception = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(cancellation.Token, exception.CancellationToken);
        Assert.Equal(0, semaphore.CurrentCount);

        // The cancelled waiter took nothing: the holder's release frees the semaphore.
        holder.Dispose();
        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task Already_cancelled_token_fails_even_when_the_semaphore_is_free_and_takes_nothing()
    {
        using var semaphore = new SemaphoreSlim(1, 1);
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();

        var locking = semaphore.LockAsync(cancellation.Token);

        Assert.True(locking.IsCanceled);
        var exception = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await locking);
        Assert.Equal(cancellation.Token, exception.CancellationToken);
        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task Disposing_a_default_releaser_does_nothing()
    {
        var releaser = default(SemaphoreReleaser);

        var disposeException = Record.Exception(releaser.Dispose);
        var disposing = releaser.DisposeAsync();

        Assert.Null(disposeException);
        Assert.True(disposing.IsCompletedSuccessfully);
        await disposing;
    }

    [Fact]
    public async Task Disposing_the_releaser_twice_releases_twice_as_documented()
    {
        using var semaphore = new SemaphoreSlim(1, 1);
        var releaser = await semaphore.LockAsync();

        releaser.Dispose();

        Assert.Throws<SemaphoreFullException>(releaser.Dispose);
        Assert.Equal(1, semaphore.CurrentCount);
    }

    [Fact]
    public async Task Null_semaphore_throws_ArgumentNullException()
    {
        SemaphoreSlim semaphore = null!;

        var exception = await Assert.ThrowsAsync<ArgumentNullException>(async () => await semaphore.LockAsync());

        Assert.Equal("semaphore", exception.ParamName);
    }

    [Fact]
    public async Task Disposed_semaphore_throws_ObjectDisposedException()
    {
        var semaphore = new SemaphoreSlim(1, 1);
        semaphore.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await semaphore.LockAsync());
    }

    [Fact]
    public void Uncontended_lock_and_release_allocate_nothing()
    {
        const int Iterations = 1000;
        using var semaphore = new SemaphoreSlim(1, 1);

        LockAndRelease(semaphore, Iterations);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var notSynchronous = LockAndRelease(semaphore, Iterations);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, notSynchronous);
        Assert.Equal(0, allocated);
        Assert.Equal(1, semaphore.CurrentCount);
    }

    // Takes and releases the lock synchronously, by Dispose and DisposeAsync in turn; returns how many locks or
    // releases did not complete synchronously (those are left alone: the semaphore is free, so there are none).
    private static int LockAndRelease(SemaphoreSlim semaphore, int iterations)
    {
        var notSynchronous = 0;
        for (var i = 0; i < iterations; i++)
        {
            var locking = semaphore.LockAsync();
            if (!locking.IsCompletedSuccessfully)
            {
                notSynchronous++;
                continue;
            }

            var releaser = locking.Result;
            if (i % 2 == 0)
            {
                releaser.Dispose();
                continue;
            }

            var disposing = releaser.DisposeAsync();
            if (!disposing.IsCompletedSuccessfully)
            {
                notSynchronous++;
            }
        }

        return notSynchronous;
    }
}
