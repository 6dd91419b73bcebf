namespace AsyncScopes.Tests.Support;

/// <summary>
/// A resource whose disposal stays pending until the test completes <see cref="Disposal"/>; with a
/// <paramref name="caller"/>, it makes that context current before it hands the pending disposal back.
/// </summary>
internal sealed class PendingDisposable(CallerContext? caller = null) : IAsyncDisposable
{
    public PendingValueTask<bool> Disposal { get; } = new();

    public ValueTask DisposeAsync()
    {
        caller?.MakeCurrent();
        return Disposal.Untyped;
    }
}
