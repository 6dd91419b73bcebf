using System.Runtime.ExceptionServices;

namespace AsyncScopes;

/// <summary>
/// Runs code inside async context managers (Python's <c>async with</c>) and builds managers from delegates.
/// </summary>
public static class AsyncContext
{
    /// <summary>
    /// Enters <paramref name="manager"/>, runs <paramref name="body"/> with the entered value, then exits the manager
    /// with the body's outcome: Python's <c>async with manager as value: body</c>.
    /// </summary>
    /// <typeparam name="T">The type of the entered value.</typeparam>
    /// <param name="manager">The context manager.</param>
    /// <param name="body">The block; it receives the entered value and <paramref name="cancellationToken"/>.</param>
    /// <param name="cancellationToken">Passed to <see cref="IAsyncContextManager{T}.EnterAsync"/> and to the body,
    /// never to <see cref="IAsyncContextManager{T}.ExitAsync"/>: cleanup is not cancelled.</param>
    /// <returns>A task that completes after the exit has run.</returns>
    /// <remarks>
    /// <para>If enter throws, the body and exit do not run and enter's exception propagates. Otherwise exit runs
    /// exactly once, whatever the body does (cancellation included), and sees <see langword="null"/> when the body
    /// completed or the exception it threw (a synchronous throw included).</para>
    /// <para>Outcome: the body's exception, rethrown with its original stack trace, unless exit returned
    /// <see langword="true"/> (suppressed: the task completes normally). If exit throws, that exception is combined
    /// with the body's by <see cref="ScopeExitException"/>'s rule: exit's exception alone when the body completed or
    /// when exit rethrew the body's exception; otherwise a flat <see cref="ScopeExitException"/> [body's, exit's].</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="manager"/> or <paramref name="body"/> is null.</exception>
    public static Task WithAsync<T>(
        this IAsyncContextManager<T> manager,
        Func<T, CancellationToken, Task> body,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(body);
        return WithCoreAsync(manager, body, cancellationToken);
    }

    /// <summary>
    /// Enters <paramref name="manager"/>, runs <paramref name="body"/> with the entered value, exits the manager with
    /// the body's outcome, and returns the body's result.
    /// </summary>
    /// <typeparam name="T">The type of the entered value.</typeparam>
    /// <typeparam name="TResult">The type of the body's result.</typeparam>
    /// <param name="manager">The context manager.</param>
    /// <param name="body">The block; it receives the entered value and <paramref name="cancellationToken"/>.</param>
    /// <param name="cancellationToken">Passed to enter and body, never to exit.</param>
    /// <returns>The body's result; <see langword="default"/> when exit suppressed the body's exception.</returns>
    /// <remarks>
    /// The same rules as <see cref="WithAsync{T}(IAsyncContextManager{T}, Func{T, CancellationToken, Task}, CancellationToken)"/>.
    /// For a value-type <typeparamref name="TResult"/>, a suppressed exception yields <c>default(TResult)</c>, which
    /// looks like a real result: where that matters, use the <see cref="Task"/> overload and capture the result
    /// inside the body.
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="manager"/> or <paramref name="body"/> is null.</exception>
    public static Task<TResult?> WithAsync<T, TResult>(
        this IAsyncContextManager<T> manager,
        Func<T, CancellationToken, Task<TResult>> body,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(body);
        return WithCoreAsync(manager, body, cancellationToken);
    }

    /// <summary>
    /// Builds a context manager from two delegates (Python's <c>@asynccontextmanager</c>, without generators).
    /// </summary>
    /// <typeparam name="T">The type of the entered value.</typeparam>
    /// <param name="enter">Acquires the value; if it throws, <paramref name="exit"/> is not called.</param>
    /// <param name="exit">Releases the value, seeing the block's exception (or <see langword="null"/>);
    /// returns <see langword="true"/> to suppress it.</param>
    /// <returns>A manager that can be entered again once exited, but not while it is entered: it remembers the
    /// entered value so that <see cref="IAsyncContextManager{T}.ExitAsync"/> can hand it to
    /// <paramref name="exit"/>. For concurrent uses, call <see cref="Create{T}(Func{CancellationToken, ValueTask{T}}, Func{T, Exception?, ValueTask{bool}})"/>
    /// once per use.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="enter"/> or <paramref name="exit"/> is null.</exception>
    public static IAsyncContextManager<T> Create<T>(
        Func<CancellationToken, ValueTask<T>> enter,
        Func<T, Exception?, ValueTask<bool>> exit)
    {
        ArgumentNullException.ThrowIfNull(enter);
        ArgumentNullException.ThrowIfNull(exit);
        return new DelegateContextManager<T>(enter, exit);
    }

    /// <summary>
    /// Builds a context manager whose exit releases the value and never suppresses (an outcome-blind cleanup).
    /// </summary>
    /// <typeparam name="T">The type of the entered value.</typeparam>
    /// <param name="enter">Acquires the value; if it throws, <paramref name="release"/> is not called.</param>
    /// <param name="release">Releases the value, whatever the block's outcome.</param>
    /// <returns>A manager with the reuse rules of <see cref="Create{T}(Func{CancellationToken, ValueTask{T}}, Func{T, Exception?, ValueTask{bool}})"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="enter"/> or <paramref name="release"/> is null.</exception>
    public static IAsyncContextManager<T> Create<T>(
        Func<CancellationToken, ValueTask<T>> enter,
        Func<T, ValueTask> release)
    {
        ArgumentNullException.ThrowIfNull(enter);
        ArgumentNullException.ThrowIfNull(release);
        return new DelegateContextManager<T>(enter, async (value, _) =>
        {
            await release(value).ConfigureAwait(false);
            return false;
        });
    }

    /// <summary>
    /// A context manager over any async-disposable resource: enter opens it, exit disposes it and never suppresses.
    /// </summary>
    /// <typeparam name="T">The resource type.</typeparam>
    /// <param name="open">Opens the resource; if it throws, nothing is disposed.</param>
    /// <returns>A manager with the reuse rules of <see cref="Create{T}(Func{CancellationToken, ValueTask{T}}, Func{T, Exception?, ValueTask{bool}})"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="open"/> is null.</exception>
    public static IAsyncContextManager<T> Of<T>(Func<CancellationToken, ValueTask<T>> open)
        where T : IAsyncDisposable
    {
        ArgumentNullException.ThrowIfNull(open);
        return new DelegateContextManager<T>(open, static async (resource, _) =>
        {
            if (resource is not null)
            {
                await resource.DisposeAsync().ConfigureAwait(false);
            }

            return false;
        });
    }

    /// <summary>
    /// Builds a context manager from an async iterator that yields once: Python's <c>@asynccontextmanager</c>. The code
    /// before the <c>yield return</c> is enter, the value yielded is the entered value, the code after it runs when the
    /// block completed, and the iterator's <c>finally</c> blocks (its <c>using</c> declarations included) run whatever
    /// happened.
    /// </summary>
    /// <typeparam name="T">The type of the entered value.</typeparam>
    /// <param name="iterator">Makes the iterator; it receives enter's cancellation token (so does its enumerator, for
    /// a parameter marked <see cref="System.Runtime.CompilerServices.EnumeratorCancellationAttribute"/>).</param>
    /// <returns>A manager with the reuse rules of <see cref="Create{T}(Func{CancellationToken, ValueTask{T}}, Func{T, Exception?, ValueTask{bool}})"/>:
    /// each enter runs a new iterator.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="iterator"/> is null.</exception>
    /// <remarks>
    /// <para>When the block failed, exit disposes the iterator: its <c>finally</c> blocks run, the code after the
    /// <c>yield return</c> does not, and the block's exception goes on. C# allows no <c>yield return</c> inside a
    /// <c>try</c> with a <c>catch</c>, so the iterator cannot see that exception, and its exit never suppresses it.
    /// When exit must see the exception (to roll back rather than commit) or suppress it, use
    /// <see cref="Create{T}(Func{CancellationToken, ValueTask{T}}, Func{T, Exception?, ValueTask{bool}})"/> or
    /// implement <see cref="IAsyncContextManager{T}"/>.</para>
    /// <para>An iterator that ends without yielding, or yields a second value, is an
    /// <see cref="InvalidOperationException"/> that names its method, thrown after its <c>finally</c> blocks ran: by
    /// enter for no value (the block does not run), by exit for a second one. What the iterator throws before its
    /// <c>yield return</c> is enter's failure; after it, exit's. When disposing the iterator throws as well (a
    /// hand-written enumerator), both come out, that one last, in a <see cref="ScopeExitException"/>; either way the
    /// manager can be entered again.</para>
    /// <para>The token the iterator received is enter's, and exit is not cancellable: code after the
    /// <c>yield return</c> that must not be cut short passes <see cref="CancellationToken.None"/>, or a deadline of its
    /// own (<see cref="Deadline.RunAsync(TimeSpan, Func{CancellationToken, Task}, CancellationToken, TimeProvider?)"/>).</para>
    /// </remarks>
    public static IAsyncContextManager<T> FromIterator<T>(Func<CancellationToken, IAsyncEnumerable<T>> iterator)
    {
        ArgumentNullException.ThrowIfNull(iterator);
        return new IteratorContextManager<T>(iterator);
    }

    /// <summary>
    /// A context manager that enters to <paramref name="value"/> and whose exit does nothing (Python's
    /// <c>nullcontext</c>): for code that takes a manager when there is nothing to manage.
    /// </summary>
    /// <typeparam name="T">The type of the value.</typeparam>
    /// <param name="value">The value returned by every enter.</param>
    /// <returns>A stateless manager, safe to enter any number of times, concurrently too.</returns>
    public static IAsyncContextManager<T> Value<T>(T value) => new ValueContextManager<T>(value);

    private static async Task WithCoreAsync<T>(
        IAsyncContextManager<T> manager,
        Func<T, CancellationToken, Task> body,
        CancellationToken cancellationToken)
    {
        T value = await manager.EnterAsync(cancellationToken).ConfigureAwait(false);
        Exception? outcome = null;
        try
        {
            await body(value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            outcome = e;
        }

        // The exit is inlined in both overloads: a helper method would cost a second state machine on the hot path.
        try
        {
            if (await manager.ExitAsync(outcome).ConfigureAwait(false))
            {
                outcome = null;
            }
        }
        catch (Exception exitError)
        {
            outcome = ScopeExitException.Combine(outcome, exitError);
        }

        if (outcome is not null)
        {
            ExceptionDispatchInfo.Throw(outcome);
        }
    }

    private static async Task<TResult?> WithCoreAsync<T, TResult>(
        IAsyncContextManager<T> manager,
        Func<T, CancellationToken, Task<TResult>> body,
        CancellationToken cancellationToken)
    {
        T value = await manager.EnterAsync(cancellationToken).ConfigureAwait(false);
        TResult? result = default;
        Exception? outcome = null;
        try
        {
            result = await body(value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            outcome = e;
        }

        bool failed = outcome is not null;
        try
        {
            if (await manager.ExitAsync(outcome).ConfigureAwait(false))
            {
                outcome = null;
            }
        }
        catch (Exception exitError)
        {
            outcome = ScopeExitException.Combine(outcome, exitError);
        }

        if (outcome is not null)
        {
            ExceptionDispatchInfo.Throw(outcome);
        }

        return failed ? default : result;
    }
}
