using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;

namespace AsyncScopes;

/// <summary>
/// A manager made from an async iterator that yields once (<see cref="AsyncContext.FromIterator{T}"/>): enter runs it
/// to its <c>yield return</c>, exit runs the rest or, after a failure, only its <c>finally</c> blocks.
/// </summary>
internal sealed class IteratorContextManager<T> : IAsyncContextManager<T>
{
    private const int Idle = 0;
    private const int Entering = 1;
    private const int Entered = 2;
    private const int Exiting = 3;

    private readonly Func<CancellationToken, IAsyncEnumerable<T>> _iterator;
    private IAsyncEnumerator<T>? _enumerator;
    private int _state;

    public IteratorContextManager(Func<CancellationToken, IAsyncEnumerable<T>> iterator)
    {
        _iterator = iterator;
    }

    // What an error calls the iterator: the method a compiler-generated one was written as (its type is named
    // <Method>d__N, nested in the method's type), else the type of the enumerator.
    private static string NameOf(IAsyncEnumerator<T> enumerator)
    {
        Type type = enumerator.GetType();
        int end = type.Name.LastIndexOf('>');
        return type.Name.StartsWith('<') && end > 1 && type.DeclaringType is { } owner
            ? $"{owner.FullName}.{type.Name[1..end]}"
            : type.FullName ?? type.Name;
    }

    public async ValueTask<T> EnterAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _state, Entering, Idle) != Idle)
        {
            throw new InvalidOperationException(
                "This context manager, made by AsyncContext.FromIterator, is already entered: exit it first, or make one manager per use.");
        }

        IAsyncEnumerator<T>? enumerator = null;
        try
        {
            enumerator = _iterator(cancellationToken).GetAsyncEnumerator(cancellationToken);
            if (!await enumerator.MoveNextAsync().ConfigureAwait(false))
            {
                throw new InvalidOperationException(
                    $"The iterator {NameOf(enumerator)} ended without yielding a value: a context manager's iterator yields exactly one.");
            }
        }
        catch (Exception failure)
        {
            // A compiler-made iterator has run its finally blocks when it threw or ended; disposing it again is
            // harmless. A hand-written one may throw here too: both are kept, and the manager is free again.
            var disposal = enumerator is null ? null : await DisposeCatchingAsync(enumerator).ConfigureAwait(false);
            Volatile.Write(ref _state, Idle);
            Throw(failure, disposal);
        }

        _enumerator = enumerator;
        Volatile.Write(ref _state, Entered);
        return enumerator.Current;
    }

    public async ValueTask<bool> ExitAsync(Exception? exception)
    {
        if (Interlocked.CompareExchange(ref _state, Exiting, Entered) != Entered)
        {
            throw new InvalidOperationException("This context manager is not entered: ExitAsync must follow a successful EnterAsync, once.");
        }

        IAsyncEnumerator<T> enumerator = _enumerator!;
        _enumerator = null;
        Exception? failure = null;
        try
        {
            // The block completed: the code after the yield runs. It failed: disposing the iterator runs only its
            // finally blocks, the one way C# lets an iterator clean up after an exception it cannot see.
            if (exception is null && await enumerator.MoveNextAsync().ConfigureAwait(false))
            {
                failure = new InvalidOperationException(
                    $"The iterator {NameOf(enumerator)} yielded a second value: a context manager's iterator yields exactly one.");
            }
        }
        catch (Exception afterYield)
        {
            failure = afterYield;
        }

        var disposal = await DisposeCatchingAsync(enumerator).ConfigureAwait(false);
        Debug.Assert(Volatile.Read(ref _state) == Exiting, "Only this exit can leave the Exiting state.");
        Volatile.Write(ref _state, Idle);
        if (failure is not null || disposal is not null)
        {
            Throw(failure, disposal);
        }

        return false;
    }

    private static async ValueTask<Exception?> DisposeCatchingAsync(IAsyncEnumerator<T> enumerator)
    {
        try
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
            return null;
        }
#pragma warning disable CA1031 // Not swallowed: Throw surfaces it, with the failure before it if there was one.
        catch (Exception disposal)
#pragma warning restore CA1031
        {
            return disposal;
        }
    }

    // One failure as it was thrown; a failure and the disposal's after it as a flat ScopeExitException.
    [DoesNotReturn]
    private static void Throw(Exception? failure, Exception? disposal)
    {
        if (failure is not null && disposal is not null)
        {
            throw new ScopeExitException([failure, disposal]);
        }

        ExceptionDispatchInfo.Throw(failure ?? disposal!);
    }
}
