using System.Diagnostics;

namespace AsyncScopes;

/// <summary>
/// The renters waiting for an item of one pool, first-in first-out, and the waiters kept for the next waits. The queue
/// is linked through the waiters themselves, so that a waiter that is cancelled or times out leaves in O(1). Everything
/// but <see cref="Count"/> and <see cref="Recycle"/> is guarded by the pool's lock.
/// </summary>
/// <remarks>A queued waiter is live: whoever takes it out of the queue completes it, once.</remarks>
/// <typeparam name="T">The pooled item type.</typeparam>
internal sealed class PoolWaiterQueue<T>(AsyncPool<T> pool, int maxSpares)
    where T : class
{
    private PoolWaiter<T>? _first;
    private PoolWaiter<T>? _last;
    private int _count;

    // Waiters done with, for the next waits: pushed without the lock, popped only under it (so no pop sees a waiter
    // leave and come back between its read and its exchange). At most maxSpares (the pool's size) are kept: between
    // two waits at most that many renters hold an item.
    private PoolWaiter<T>? _spares;
    private int _spareCount;

    /// <summary>The waiters queued; readable without the lock.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>A waiter for a renter about to wait: a spare one, else a new one. Under the lock.</summary>
    public PoolWaiter<T> Rent()
    {
        while (Volatile.Read(ref _spares) is { } spare)
        {
            if (ReferenceEquals(Interlocked.CompareExchange(ref _spares, spare.NextSpare, spare), spare))
            {
                Interlocked.Decrement(ref _spareCount);
                spare.NextSpare = null;
                return spare;
            }
        }

        return new PoolWaiter<T>(pool);
    }

    /// <summary>The renter is done with its waiter: its outcome was read (or it never was completed), and no
    /// cancellation or timer callback can reach it any more. Reset makes a stale <see cref="ValueTask{TResult}"/> over
    /// it fail instead of reading the next renter's outcome. Without the lock.</summary>
    public void Recycle(PoolWaiter<T> waiter)
    {
        Debug.Assert(!waiter.IsQueued, "A queued waiter is still waiting.");
        Debug.Assert(waiter.Timer is null, "A waiter that had a timer is not reused: a late callback could reach it.");
        if (Interlocked.Increment(ref _spareCount) > maxSpares)
        {
            Interlocked.Decrement(ref _spareCount);
            return;
        }

        waiter.Reset();
        PoolWaiter<T>? top = Volatile.Read(ref _spares);
        while (true)
        {
            waiter.NextSpare = top;
            var seen = Interlocked.CompareExchange(ref _spares, waiter, top);
            if (ReferenceEquals(seen, top))
            {
                return;
            }

            top = seen;
        }
    }

    /// <summary>Queues a waiter last. Under the lock.</summary>
    public void Enqueue(PoolWaiter<T> waiter)
    {
        Debug.Assert(!waiter.IsQueued && waiter.Previous is null && waiter.Next is null, "A waiter is queued once.");
        waiter.Previous = _last;
        if (_last is null)
        {
            _first = waiter;
        }
        else
        {
            _last.Next = waiter;
        }

        _last = waiter;
        waiter.IsQueued = true;

        // A full fence before the renter reads the pool's cached item, as a return reads the count after publishing
        // there: one of the two sees the other.
        Interlocked.Increment(ref _count);
    }

    /// <summary>The first waiter, taken out of the queue: the caller must complete it. Under the lock.</summary>
    public PoolWaiter<T>? Dequeue()
    {
        var first = _first;
        if (first is not null)
        {
            Remove(first);
        }

        return first;
    }

    /// <summary>Takes a queued waiter out, wherever it is. Under the lock.</summary>
    public void Remove(PoolWaiter<T> waiter)
    {
        Debug.Assert(waiter.IsQueued, "Only a queued waiter leaves the queue.");
        if (waiter.Previous is null)
        {
            Debug.Assert(ReferenceEquals(_first, waiter), "A waiter without a predecessor is the first.");
            _first = waiter.Next;
        }
        else
        {
            waiter.Previous.Next = waiter.Next;
        }

        if (waiter.Next is null)
        {
            Debug.Assert(ReferenceEquals(_last, waiter), "A waiter without a successor is the last.");
            _last = waiter.Previous;
        }
        else
        {
            waiter.Next.Previous = waiter.Previous;
        }

        waiter.Previous = null;
        waiter.Next = null;
        waiter.IsQueued = false;
        Volatile.Write(ref _count, _count - 1);
    }

    /// <summary>Debug builds: the links are consistent and the count matches them. Under the lock.</summary>
    [Conditional("DEBUG")]
    public void AssertInvariants()
    {
        int count = 0;
        PoolWaiter<T>? previous = null;
        for (var waiter = _first; waiter is not null; waiter = waiter.Next)
        {
            Debug.Assert(waiter.IsQueued, "A waiter in the queue is marked queued.");
            Debug.Assert(ReferenceEquals(waiter.Previous, previous), "The links agree in both directions.");
            previous = waiter;
            count++;
        }

        Debug.Assert(ReferenceEquals(_last, previous), "The last waiter ends the links.");
        Debug.Assert(count == _count, "The count matches the queue.");
    }
}
