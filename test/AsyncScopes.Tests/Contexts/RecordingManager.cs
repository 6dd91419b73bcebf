namespace AsyncScopes.Tests.Contexts;

/// <summary>What a test exit does when it runs.</summary>
internal enum ExitBehavior
{
    ReturnFalse,
    ReturnTrue,
    Throw,
    RethrowSeen,
}

/// <summary>A context manager that records what it was asked and does what the test tells it to.</summary>
internal sealed class RecordingManager<T>(T value, ExitBehavior behavior = ExitBehavior.ReturnFalse, Exception? exitError = null)
    : IAsyncContextManager<T>
{
    private readonly List<Exception?> _exitsSeen = [];

    public int Enters { get; private set; }

    public CancellationToken EnterToken { get; private set; }

    public Exception? EnterError { get; init; }

    public IReadOnlyList<Exception?> ExitsSeen => _exitsSeen;

    public Exception ExitError { get; } = exitError ?? new InvalidOperationException("exit failed");

    public ValueTask<T> EnterAsync(CancellationToken cancellationToken = default)
    {
        Enters++;
        EnterToken = cancellationToken;
        if (EnterError is not null)
        {
            throw EnterError;
        }

        return new(value);
    }

    public ValueTask<bool> ExitAsync(Exception? exception)
    {
        _exitsSeen.Add(exception);
        return behavior switch
        {
            ExitBehavior.ReturnFalse => new(false),
            ExitBehavior.ReturnTrue => new(true),
            ExitBehavior.RethrowSeen => throw (exception ?? ExitError),
            _ => throw ExitError,
        };
    }
}
