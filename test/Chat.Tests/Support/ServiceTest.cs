using Chat.Storage;

namespace Chat.Tests.Support;

/// <summary>A test against one running service on a fresh database; a test may stop it and start others on the same
/// folder.</summary>
public abstract class ServiceTest : IAsyncLifetime, IDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    internal TempDirectory Directory { get; } = new();

    internal ChatServer Server { get; private set; } = null!;

    /// <summary>The hook the server of <see cref="InitializeAsync"/> runs in every message's transaction.</summary>
    internal virtual IMessageWriteHook? Hook => null;

    /// <summary>Settings every server of the test starts with, before its own: which database it uses, when not the
    /// SQLite file in <see cref="Directory"/>.</summary>
    internal virtual IReadOnlyList<string> DatabaseSettings => [];

    public virtual async Task InitializeAsync() => Server = await StartServerAsync(hook: Hook);

    public async Task DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }
    }

    public void Dispose()
    {
        Directory.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Starts a server on this test's database, stopped and disposed after the test.</summary>
    internal async Task<ChatServer> StartServerAsync(
        ObservedTimeProvider? time = null, IMessageWriteHook? hook = null, params string[] settings) =>
        Own(await ChatServer.StartAsync(Directory.Path, time, hook, [.. DatabaseSettings, .. settings]));

    /// <summary>Disposes <paramref name="resource"/> after the test, before what was owned earlier.</summary>
    internal T Own<T>(T resource)
        where T : IAsyncDisposable
    {
        _owned.Add(resource);
        return resource;
    }
}
