using System.Diagnostics;

namespace AsyncScopes;

/// <summary>A manager built from an enter and an exit delegate; it remembers the entered value for its exit.</summary>
internal sealed class DelegateContextManager<T> : IAsyncContextManager<T>
{
    private const int Idle = 0;
    private const int Entering = 1;
    private const int Entered = 2;
    private const int Exiting = 3;

    private readonly Func<CancellationToken, ValueTask<T>> _enter;
    private readonly Func<T, Exception?, ValueTask<bool>> _exit;
    private T? _value;
    private int _state;

    public DelegateContextManager(Func<CancellationToken, ValueTask<T>> enter, Func<T, Exception?, ValueTask<bool>> exit)
    {
        _enter = enter;
        _exit = exit;
    }

    public async ValueTask<T> EnterAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _state, Entering, Idle) != Idle)
        {
            throw new InvalidOperationException(
                "This context manager is already entered. A manager made by AsyncContext.Create or AsyncContext.Of " +
                "holds one value at a time: exit it first, or create one manager per use.");
        }

        try
        {
            _value = await _enter(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Volatile.Write(ref _state, Idle);
            throw;
        }

        Volatile.Write(ref _state, Entered);
        return _value;
    }

    public async ValueTask<bool> ExitAsync(Exception? exception)
    {
        if (Interlocked.CompareExchange(ref _state, Exiting, Entered) != Entered)
        {
            throw new InvalidOperationException("This context manager is not entered: ExitAsync must follow a successful EnterAsync, once.");
        }

        T value = _value!;
        _value = default;
        try
        {
            return await _exit(value, exception).ConfigureAwait(false);
        }
        finally
        {
            Debug.Assert(Volatile.Read(ref _state) == Exiting, "Only this exit can leave the Exiting state.");
            Volatile.Write(ref _state, Idle);
        }
    }
}
