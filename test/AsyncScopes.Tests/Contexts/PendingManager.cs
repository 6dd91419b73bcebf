using AsyncScopes.Tests.Support;

namespace AsyncScopes.Tests.Contexts;

/// <summary>
/// A context manager whose enter and exit stay pending until the test completes them. Each makes
/// <paramref name="caller"/> current before it hands back its pending work, as code on a UI thread would.
/// </summary>
internal sealed class PendingManager(CallerContext caller) : IAsyncContextManager<int>
{
    private readonly List<Exception?> _exitsSeen = [];

    public PendingValueTask<int> Enter { get; } = new();

    public PendingValueTask<bool> Exit { get; } = new();

    public IReadOnlyList<Exception?> ExitsSeen => _exitsSeen;

    public ValueTask<int> EnterAsync(CancellationToken cancellationToken = default)
    {
        caller.MakeCurrent();
        return Enter.Task;
    }

    public ValueTask<bool> ExitAsync(Exception? exception)
    {
        _exitsSeen.Add(exception);
        caller.MakeCurrent();
        return Exit.Task;
    }
}
