namespace Chat.Load;

/// <summary>The processes of one target: one, or several nodes of the service sharing its database.</summary>
internal sealed class ServerGroup : IAsyncDisposable
{
    private readonly List<ServerProcess> _servers = [];

    public int Count => _servers.Count;

    public ServerProcess this[int index] => _servers[index];

    /// <summary>Their process ids.</summary>
    public IEnumerable<int> ProcessIds => _servers.Select(server => server.ProcessId);

    /// <summary>The CPU time all of them have used so far.</summary>
    public TimeSpan CpuTime => _servers.Aggregate(TimeSpan.Zero, (sum, server) => sum + server.CpuTime);

    /// <summary>The sum of their peak resident memories.</summary>
    public long PeakResidentBytes => _servers.Sum(server => server.PeakResidentBytes);

    public async Task<ServerProcess> StartAsync(string target, IEnumerable<string> settings)
    {
        ServerProcess server = await ServerProcess.StartAsync(target, settings);
        _servers.Add(server);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (ServerProcess server in _servers)
        {
            await server.DisposeAsync();
        }
    }
}
