using System.Threading.Tasks.Sources;

namespace AsyncScopes.Tests.Support;

/// <summary>
/// A <see cref="ValueTask{TResult}"/> (or <see cref="ValueTask"/>) that stays pending until the test completes it, and
/// is backed by an <see cref="IValueTaskSource{TResult}"/> as pooled operations are: reading its result before it
/// completed throws instead of blocking, and <see cref="Consumed"/> tells whether it was read, as every
/// <see cref="ValueTask"/> must be, once. The continuation runs inline, on the thread that completes it.
/// </summary>
internal sealed class PendingValueTask<T> : IValueTaskSource<T>, IValueTaskSource
{
    private ManualResetValueTaskSourceCore<T> _core;
    private int _consumed;

    /// <summary>The pending operation.</summary>
    public ValueTask<T> Task => new(this, _core.Version);

    /// <summary>The same operation, without its result.</summary>
    public ValueTask Untyped => new(this, _core.Version);

    /// <summary>Whether the result (or the exception) was read.</summary>
    public bool Consumed => Volatile.Read(ref _consumed) != 0;

    public void SetResult(T result) => _core.SetResult(result);

    public void SetException(Exception error) => _core.SetException(error);

    public T GetResult(short token)
    {
        bool completed = _core.GetStatus(token) != ValueTaskSourceStatus.Pending;
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            if (completed)
            {
                Volatile.Write(ref _consumed, 1);
            }
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
