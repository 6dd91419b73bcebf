using System.Buffers;
using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace AsyncScopes;

/// <summary>
/// A stack of exits that run last-in first-out when the stack is closed: Python's <c>AsyncExitStack</c>, for a
/// number of resources that is only known at run time, or for handing resources on to a caller with
/// <see cref="PopAll"/>.
/// </summary>
/// <remarks>
/// <para>Closing the stack runs every exit, even when an earlier one threw. Each exit sees the <em>current</em>
/// exception: the body's, replaced by the <see cref="ScopeExitException"/> rule whenever an exit throws, and set to
/// <see langword="null"/> when an exit suppresses it. A stack with exits <c>e1..en</c> behaves exactly like
/// <c>n</c> nested <see cref="AsyncContext.WithAsync{T}(IAsyncContextManager{T}, Func{T, CancellationToken, Task}, CancellationToken)"/>
/// calls with <c>e1</c> outermost.</para>
/// <para>Two forms: <see cref="RunAsync(Func{AsyncExitStack, CancellationToken, Task}, CancellationToken)"/> sees the
/// body's real exception; in <c>await using</c> form the body calls <see cref="Complete"/> when it finished, and
/// disposal without it is treated as abandonment (exits see a <see cref="ScopeAbandonedException"/>).</para>
/// <para>Registration is thread-safe. Registering on a stack that is closing or closed throws
/// <see cref="InvalidOperationException"/>.</para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Justification = "The name of Python's AsyncExitStack, which it mirrors.")]
[DebuggerDisplay("AsyncExitStack, Count = {Count}")]
public sealed class AsyncExitStack : IAsyncDisposable, IAsyncContextManager<AsyncExitStack>
{
    // _state: Open, Unwinding or Unwound, and while open, Busy when a caller holds the stack to change it. Held with
    // one compare-and-swap and released with a plain write: registrations are short and almost never concurrent, and
    // a lock would cost two atomic operations per registration, and an object per stack.
    private const int Open = 0;
    private const int Unwinding = 1;
    private const int Unwound = 2;
    private const int OpenBusy = 4;

    private static readonly KeyValuePair<string, object?> KindTag = new(ScopeMetrics.KindTag, "AsyncExitStack");

    private readonly ScopeTracker? _tracker;
    private ExitList _exits;
    private int _state;
    private volatile bool _completed;

    /// <summary>Creates an empty, open stack.</summary>
    public AsyncExitStack()
    {
        _tracker = ScopeTracker.StartIfTracking("AsyncExitStack", null);
        if (ScopeMetrics.OpenScopes.Enabled)
        {
            ScopeMetrics.OpenScopes.Add(1, KindTag);
        }
    }

    /// <summary>The number of exits registered and not yet run.</summary>
    public int Count
    {
        get
        {
            if (!TryHoldOpen())
            {
                return 0; // the exits were taken to be run
            }

            int count = _exits.Count;
            Release();
            return count;
        }
    }

    /// <summary>
    /// Enters <paramref name="manager"/> and registers its exit. The exit is registered only after enter succeeded.
    /// </summary>
    /// <typeparam name="T">The type of the entered value.</typeparam>
    /// <param name="manager">The manager to enter.</param>
    /// <param name="cancellationToken">Passed to <see cref="IAsyncContextManager{T}.EnterAsync"/>.</param>
    /// <returns>The entered value.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="manager"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The stack is closing or closed. If it started closing while the
    /// manager was being entered, the manager is exited at once, with a <see cref="ScopeAbandonedException"/>, before
    /// this is thrown.</exception>
    /// <remarks>If enter throws, nothing is registered and enter's exception propagates.</remarks>
    public ValueTask<T> EnterAsync<T>(IAsyncContextManager<T> manager, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ThrowIfNotOpen();
        return EnterCoreAsync(manager, cancellationToken);
    }

    private async ValueTask<T> EnterCoreAsync<T>(IAsyncContextManager<T> manager, CancellationToken cancellationToken)
    {
        T value = await manager.EnterAsync(cancellationToken).ConfigureAwait(false);
        if (TryAdd(new ExitEntry(new Func<Exception?, ValueTask<bool>>(manager.ExitAsync), ExitKind.Exit)))
        {
            return value;
        }

        // The stack closed while the manager was being entered: nothing would ever exit it, so exit it now, as
        // abandoned (its body never ran, so it must not commit).
        try
        {
            await manager.ExitAsync(new ScopeAbandonedException()).ConfigureAwait(false);
        }
        catch (Exception exitError)
        {
            throw new InvalidOperationException(ClosedMessage, exitError);
        }

        throw new InvalidOperationException(ClosedMessage);
    }

    /// <summary>Registers <paramref name="resource"/>'s <see cref="IAsyncDisposable.DisposeAsync"/> as an exit that never suppresses.</summary>
    /// <typeparam name="T">The resource type.</typeparam>
    /// <param name="resource">The resource.</param>
    /// <returns><paramref name="resource"/>, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="resource"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The stack is closing or closed; nothing is registered.</exception>
    public T Push<T>(T resource)
        where T : IAsyncDisposable
    {
        ArgumentNullException.ThrowIfNull(resource);
        Add(new ExitEntry(resource, ExitKind.AsyncDisposable));
        return resource;
    }

    /// <summary>Registers <paramref name="resource"/>'s <see cref="IDisposable.Dispose"/> as an exit that never suppresses.</summary>
    /// <typeparam name="T">The resource type.</typeparam>
    /// <param name="resource">The resource.</param>
    /// <returns><paramref name="resource"/>, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="resource"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The stack is closing or closed; nothing is registered.</exception>
    public T PushDisposable<T>(T resource)
        where T : IDisposable
    {
        ArgumentNullException.ThrowIfNull(resource);
        Add(new ExitEntry(resource, ExitKind.Disposable));
        return resource;
    }

    /// <summary>Registers a callback that runs when the stack closes, whatever the outcome; it cannot suppress.</summary>
    /// <param name="callback">The callback.</param>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The stack is closing or closed; nothing is registered.</exception>
    public void Defer(Func<ValueTask> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        Add(new ExitEntry(callback, ExitKind.Callback));
    }

    /// <summary>Registers an exit that sees the current exception and returns <see langword="true"/> to suppress it.</summary>
    /// <param name="exit">The exit, with the contract of <see cref="IAsyncContextManager{T}.ExitAsync"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="exit"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The stack is closing or closed; nothing is registered.</exception>
    public void PushExit(Func<Exception?, ValueTask<bool>> exit)
    {
        ArgumentNullException.ThrowIfNull(exit);
        Add(new ExitEntry(exit, ExitKind.Exit));
    }

    /// <summary>
    /// Moves every registered exit, in order, to a new stack and leaves this one empty: the way to open several
    /// resources under the protection of a stack and then hand them on to a caller who closes them later.
    /// </summary>
    /// <returns>A new open stack that owns the exits. Its <see cref="Complete"/> state is fresh.</returns>
    /// <exception cref="InvalidOperationException">The stack is closing or closed.</exception>
    public AsyncExitStack PopAll()
    {
        // Held before the new stack exists: a refused PopAll leaves no open stack behind.
        HoldOpen();
        try
        {
            var popped = new AsyncExitStack();
            popped._exits = _exits;
            _exits = default;
            return popped;
        }
        finally
        {
            Release();
        }
    }

    /// <summary>
    /// Marks the body of the <c>await using</c> form as finished normally: <see cref="DisposeAsync"/> then runs the
    /// exits with no exception instead of a <see cref="ScopeAbandonedException"/>. Call it as the last statement of
    /// the block. Calling it more than once is harmless.
    /// </summary>
    /// <exception cref="InvalidOperationException">The stack is closing or closed.</exception>
    public void Complete()
    {
        HoldOpen();
        _completed = true;
        Release();
    }

    /// <summary>
    /// Closes the stack, running every exit last-in first-out with <paramref name="exception"/> as the first
    /// current exception. This is the stack's own <see cref="IAsyncContextManager{T}.ExitAsync"/>.
    /// </summary>
    /// <param name="exception">How the block ended: <see langword="null"/> when it completed.</param>
    /// <returns><see langword="true"/> when <paramref name="exception"/> was suppressed by an exit;
    /// <see langword="false"/> when it should propagate unchanged, when there was none, or when the stack was
    /// already closed (nothing runs).</returns>
    /// <exception cref="Exception">The final current exception, when exits changed it: an exit's exception, or a
    /// <see cref="ScopeExitException"/> combining it with <paramref name="exception"/>.</exception>
    public async ValueTask<bool> ExitAsync(Exception? exception)
    {
        if (!TryBeginUnwinding(out var exits))
        {
            return false;
        }

        var (final, _) = await Unwind(exits, exception).ConfigureAwait(false);
        if (final is null)
        {
            return exception is not null;
        }

        if (ReferenceEquals(final, exception))
        {
            return false;
        }

        ExceptionDispatchInfo.Throw(final);
        return false; // unreachable
    }

    /// <summary>
    /// Closes the stack, running every exit last-in first-out. The first exit sees <see langword="null"/> when
    /// <see cref="Complete"/> was called, else a <see cref="ScopeAbandonedException"/>. A second call does nothing.
    /// </summary>
    /// <returns>A task that completes when every exit has run.</returns>
    /// <exception cref="Exception">What the exits threw: one exception as itself, several as a
    /// <see cref="ScopeExitException"/> in the order they were thrown. The synthetic
    /// <see cref="ScopeAbandonedException"/> is never thrown from here, and neither is it when an exit
    /// suppressed the failures before it.</exception>
    public ValueTask DisposeAsync()
    {
        if (!TryBeginUnwinding(out var exits))
        {
            return default;
        }

        Exception? abandoned = _completed ? null : new ScopeAbandonedException();
        ValueTask<(Exception? Final, bool Raised)> unwinding = Unwind(exits, abandoned);
        if (!unwinding.IsCompletedSuccessfully)
        {
            return DisposeCoreAsync(unwinding, abandoned);
        }

        var outcome = unwinding.Result;
        return outcome.Final is null || ReferenceEquals(outcome.Final, abandoned)
            ? default // every exit ran synchronously and nothing is left to throw
            : DisposeCoreAsync(new(outcome), abandoned);
    }

    private static async ValueTask DisposeCoreAsync(ValueTask<(Exception? Final, bool Raised)> unwinding, Exception? abandoned)
    {
        var (final, _) = await unwinding.ConfigureAwait(false);
        if (final is null || ReferenceEquals(final, abandoned))
        {
            return;
        }

        if (abandoned is not null && final is ScopeExitException { InnerExceptions: [var first, ..] } combined && ReferenceEquals(first, abandoned))
        {
            // Only what the exits threw leaves DisposeAsync; an exit that wrapped the abandonment alone threw nothing else.
            var thrown = combined.InnerExceptions.Skip(1).ToList();
            if (thrown.Count == 0)
            {
                return;
            }

            final = thrown.Count == 1 ? thrown[0] : new ScopeExitException(thrown);
        }

        ExceptionDispatchInfo.Throw(final);
    }

    ValueTask<AsyncExitStack> IAsyncContextManager<AsyncExitStack>.EnterAsync(CancellationToken cancellationToken)
    {
        ThrowIfNotOpen();
        return new(this);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a new stack, then closes the stack with the body's outcome.
    /// </summary>
    /// <param name="body">The block; it registers exits on the stack it receives.</param>
    /// <param name="cancellationToken">Passed to the body; exits are not cancelled by it.</param>
    /// <returns>A task that completes when every exit has run.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <remarks>The outcome is that of nested <see cref="AsyncContext.WithAsync{T}(IAsyncContextManager{T}, Func{T, CancellationToken, Task}, CancellationToken)"/>
    /// calls: the body's exception unless an exit suppressed it, combined by the <see cref="ScopeExitException"/>
    /// rule with whatever exits threw.</remarks>
    public static Task RunAsync(Func<AsyncExitStack, CancellationToken, Task> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunCoreAsync(body, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a new stack, closes the stack with the body's outcome, and returns the
    /// body's result.
    /// </summary>
    /// <typeparam name="T">The type of the result.</typeparam>
    /// <param name="body">The block; it registers exits on the stack it receives.</param>
    /// <param name="cancellationToken">Passed to the body; exits are not cancelled by it.</param>
    /// <returns>The body's result; <see langword="default"/> when an exit suppressed an exception, whether the body's
    /// or an inner exit's (exactly as nested <see cref="AsyncContext.WithAsync{T, TResult}(IAsyncContextManager{T}, Func{T, CancellationToken, Task{TResult}}, CancellationToken)"/>
    /// would).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    public static Task<T?> RunAsync<T>(Func<AsyncExitStack, CancellationToken, Task<T>> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunCoreAsync(body, cancellationToken);
    }

    private static async Task RunCoreAsync(Func<AsyncExitStack, CancellationToken, Task> body, CancellationToken cancellationToken)
    {
        var stack = new AsyncExitStack();
        Exception? error = null;
        try
        {
            await body(stack, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }

        var (final, _) = await stack.CloseAsync(error).ConfigureAwait(false);
        if (final is not null)
        {
            ExceptionDispatchInfo.Throw(final);
        }
    }

    private static async Task<T?> RunCoreAsync<T>(Func<AsyncExitStack, CancellationToken, Task<T>> body, CancellationToken cancellationToken)
    {
        var stack = new AsyncExitStack();
        T? result = default;
        Exception? error = null;
        try
        {
            result = await body(stack, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }

        var (final, raised) = await stack.CloseAsync(error).ConfigureAwait(false);
        if (final is not null)
        {
            ExceptionDispatchInfo.Throw(final);
        }

        return raised ? default : result;
    }

    // Closes the stack for RunAsync; a body that already closed it leaves its own exception as the outcome.
    private ValueTask<(Exception? Final, bool Raised)> CloseAsync(Exception? exception)
    {
        return TryBeginUnwinding(out var exits) ? Unwind(exits, exception) : new((exception, exception is not null));
    }

    /// <summary>
    /// Folds the exits over the current exception, last registered first. Returns the final current exception and
    /// whether any exception was current at some point (the body's or an exit's). Runs synchronously while the exits
    /// complete synchronously (as resources' disposals mostly do): the async method takes over at the first exit that
    /// does not.
    /// </summary>
    private ValueTask<(Exception? Final, bool Raised)> Unwind(ExitList exits, Exception? exception)
    {
        Debug.Assert(Volatile.Read(ref _state) == Unwinding, "Only the caller that began unwinding runs the exits.");
        Exception? current = exception;
        bool raised = exception is not null;
        for (int i = exits.Count - 1; i >= 0; i--)
        {
            ValueTask<bool> exiting;
            try
            {
                exiting = exits[i].InvokeAsync(current);
                if (!exiting.IsCompleted)
                {
                    return UnwindAsync(exits, i, exiting, current, raised);
                }

                if (exiting.GetAwaiter().GetResult())
                {
                    current = null;
                }
            }
            catch (Exception exitError)
            {
                current = ScopeExitException.Combine(current, exitError);
                raised = true;
            }
        }

        EndUnwinding(exits);
        return new((current, raised));
    }

    // The rest of Unwind, from exit <paramref name="index"/>, whose exit is still running.
    private async ValueTask<(Exception? Final, bool Raised)> UnwindAsync(ExitList exits, int index, ValueTask<bool> exiting, Exception? current, bool raised)
    {
        for (int i = index; i >= 0; i--)
        {
            try
            {
                if (i < index)
                {
                    exiting = exits[i].InvokeAsync(current);
                }

                if (await exiting.ConfigureAwait(false))
                {
                    current = null;
                }
            }
            catch (Exception exitError)
            {
                current = ScopeExitException.Combine(current, exitError);
                raised = true;
            }
        }

        EndUnwinding(exits);
        return (current, raised);
    }

    private void EndUnwinding(ExitList exits)
    {
        exits.Release();
        Volatile.Write(ref _state, Unwound);
    }

    // Takes the exits to run (possibly none); false when the stack already began closing.
    private bool TryBeginUnwinding(out ExitList exits)
    {
        if (!TryHoldOpen())
        {
            exits = default;
            return false;
        }

        exits = _exits;
        _exits = default;
        Volatile.Write(ref _state, Unwinding); // releases the hold: from here on, nothing can be registered
        _tracker?.Close();
        if (ScopeMetrics.OpenScopes.Enabled)
        {
            ScopeMetrics.OpenScopes.Add(-1, KindTag);
        }

        return true;
    }

    private void Add(ExitEntry entry)
    {
        if (!TryAdd(entry))
        {
            throw new InvalidOperationException(ClosedMessage);
        }
    }

    private bool TryAdd(ExitEntry entry)
    {
        if (!TryHoldOpen())
        {
            return false;
        }

        try
        {
            _exits.Add(entry);
        }
        finally
        {
            Release();
        }

        return true;
    }

    // Holds the open stack for a change, waiting while another caller holds it; false once it began closing.
    private bool TryHoldOpen()
    {
        return Interlocked.CompareExchange(ref _state, OpenBusy, Open) == Open || TryHoldOpenContended();
    }

    private bool TryHoldOpenContended()
    {
        var spinner = default(SpinWait);
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == Open)
            {
                if (Interlocked.CompareExchange(ref _state, OpenBusy, Open) == Open)
                {
                    return true;
                }
            }
            else if (state != OpenBusy)
            {
                return false;
            }

            spinner.SpinOnce();
        }
    }

    private void HoldOpen()
    {
        if (!TryHoldOpen())
        {
            throw new InvalidOperationException(ClosedMessage);
        }
    }

    // Ends a hold: nobody else changes the state while it is held.
    private void Release()
    {
        Debug.Assert(Volatile.Read(ref _state) == OpenBusy, "Only a holder releases the stack.");
        Volatile.Write(ref _state, Open);
    }

    private void ThrowIfNotOpen()
    {
        if ((Volatile.Read(ref _state) & ~OpenBusy) != Open)
        {
            throw new InvalidOperationException(ClosedMessage);
        }
    }

    private const string ClosedMessage =
        "The AsyncExitStack is closing or closed: nothing can be registered on it, popped from it or completed.";

    private enum ExitKind : byte
    {
        AsyncDisposable,
        Disposable,
        Callback,
        Exit,
    }

    /// <summary>The registered exits, in an array rented from the shared pool and given back once they ran.</summary>
    private struct ExitList
    {
        private ExitEntry[]? _items;
        private int _count;

        public readonly int Count => _count;

        public readonly ExitEntry this[int index] => _items![index];

        public void Add(ExitEntry entry)
        {
            if (_items is null)
            {
                _items = ArrayPool<ExitEntry>.Shared.Rent(8);
            }
            else if (_count == _items.Length)
            {
                var larger = ArrayPool<ExitEntry>.Shared.Rent(_count * 2);
                Array.Copy(_items, larger, _count);
                ArrayPool<ExitEntry>.Shared.Return(_items, clearArray: true);
                _items = larger;
            }

            _items[_count++] = entry;
        }

        public void Release()
        {
            if (_items is not null)
            {
                // Only the entries used hold references: the rest of a rented array is clear already.
                Array.Clear(_items, 0, _count);
                ArrayPool<ExitEntry>.Shared.Return(_items);
                _items = null;
                _count = 0;
            }
        }
    }

    private readonly struct ExitEntry(object target, ExitKind kind)
    {
        public ValueTask<bool> InvokeAsync(Exception? exception)
        {
            switch (kind)
            {
                case ExitKind.AsyncDisposable:
                    return AfterAsync(((IAsyncDisposable)target).DisposeAsync());
                case ExitKind.Disposable:
                    ((IDisposable)target).Dispose();
                    return new(false);
                case ExitKind.Callback:
                    return AfterAsync(((Func<ValueTask>)target)());
                default:
                    Debug.Assert(kind == ExitKind.Exit, "Unknown exit kind.");
                    return ((Func<Exception?, ValueTask<bool>>)target)(exception);
            }
        }

        private static ValueTask<bool> AfterAsync(ValueTask pending)
        {
            if (pending.IsCompletedSuccessfully)
            {
                pending.GetAwaiter().GetResult();
                return new(false);
            }

            return AwaitAsync(pending);

            static async ValueTask<bool> AwaitAsync(ValueTask pending)
            {
                await pending.ConfigureAwait(false);
                return false;
            }
        }
    }
}
