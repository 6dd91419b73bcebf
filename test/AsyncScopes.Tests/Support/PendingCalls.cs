namespace AsyncScopes.Tests.Support;

/// <summary>
/// The calls of a callback, each pending until the test completes it: the n-th completion completes the n-th call,
/// whichever of the two comes first.
/// </summary>
internal sealed class PendingCalls<T>
{
    private readonly Lock _lock = new();
    private readonly List<PendingValueTask<T>> _calls = [];
    private readonly List<(int Count, TaskCompletionSource Gate)> _waits = [];
    private int _called;
    private int _completed;

    /// <summary>How many calls were made.</summary>
    public int Called
    {
        get
        {
            lock (_lock)
            {
                return _called;
            }
        }
    }

    /// <summary>What the next call hands back.</summary>
    public PendingValueTask<T> Next()
    {
        lock (_lock)
        {
            var call = At(_called++);
            foreach (var (count, gate) in _waits)
            {
                if (_called >= count)
                {
                    gate.TrySetResult();
                }
            }

            return call;
        }
    }

    /// <summary>Completes the next call, made or still to come, with <paramref name="result"/>.</summary>
    public void Complete(T result) => NextToComplete().SetResult(result);

    /// <summary>Fails the next call, made or still to come, with <paramref name="error"/>.</summary>
    public void Fail(Exception error) => NextToComplete().SetException(error);

    /// <summary>Completes once the callback was called <paramref name="count"/> times.</summary>
    public Task WhenCalled(int count)
    {
        lock (_lock)
        {
            if (_called >= count)
            {
                return Task.CompletedTask;
            }

            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waits.Add((count, gate));
            return gate.Task;
        }
    }

    private PendingValueTask<T> NextToComplete()
    {
        lock (_lock)
        {
            return At(_completed++);
        }
    }

    private PendingValueTask<T> At(int index)
    {
        while (_calls.Count <= index)
        {
            _calls.Add(new PendingValueTask<T>());
        }

        return _calls[index];
    }
}
