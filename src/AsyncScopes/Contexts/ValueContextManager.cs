namespace AsyncScopes;

/// <summary>Python's <c>nullcontext</c>: enters to a fixed value, exits doing nothing.</summary>
internal sealed class ValueContextManager<T>(T value) : IAsyncContextManager<T>
{
    public ValueTask<T> EnterAsync(CancellationToken cancellationToken = default) => new(value);

    public ValueTask<bool> ExitAsync(Exception? exception) => new(false);
}
