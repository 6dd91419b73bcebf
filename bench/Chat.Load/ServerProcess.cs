using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Chat.Load;

/// <summary>
/// A chat server as a process of its own, started from beside this program in a fresh temp folder: the service
/// (<c>dotnet Chat.dll</c>, on a fresh database) or a baseline (<c>dotnet Chat.Baselines.dll raw|signalr</c>).
/// </summary>
internal sealed partial class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServerProcess(Process process, string directory)
    {
        _process = process;
        _directory = directory;
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) => _listening.TrySetException(new InvalidOperationException("The server exited before it listened."));
    }

    public Uri BaseAddress { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    /// <summary>The server's process id, for a profiler.</summary>
    public int ProcessId => _process.Id;

    /// <summary>The target it is: <c>service</c>, <c>raw</c> or <c>signalr</c>.</summary>
    public string Target { get; private set; } = null!;

    /// <summary>The CPU time the process has used so far, user and system.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>The most memory the process has had resident (<c>VmHWM</c>).</summary>
    public long PeakResidentBytes
    {
        get
        {
            _process.Refresh();
            return _process.PeakWorkingSet64;
        }
    }

    /// <summary>Starts <paramref name="target"/>; the service with <paramref name="settings"/>.</summary>
    public static async Task<ServerProcess> StartAsync(string target, IEnumerable<string> settings)
    {
        string directory = Directory.CreateTempSubdirectory("chat-load-").FullName;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string adminKey = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        if (target == "service")
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Chat.dll"));
            start.Environment["Security__AdminApiKey"] = adminKey; // for /health/details; the environment, not the command line
            foreach (string setting in settings)
            {
                start.ArgumentList.Add("--" + setting);
            }
        }
        else
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Chat.Baselines.dll"));
            start.ArgumentList.Add(target);
        }

        start.ArgumentList.Add("--urls=http://127.0.0.1:0");
        var server = new ServerProcess(new Process { StartInfo = start, EnableRaisingEvents = true }, directory) { Target = target };
        server._process.Start();
        try
        {
            server._process.BeginOutputReadLine();
            server._process.BeginErrorReadLine();
            server.BaseAddress = await server._listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch
        {
            // A server that never said it listens must not outlive the run, nor its directory.
            await server.DisposeAsync();
            throw;
        }

        server.Http = new HttpClient { BaseAddress = server.BaseAddress };
        server.Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminKey);
        return server;
    }

    /// <summary>Where a client of <paramref name="room"/> connects: the service's and the raw baseline's WebSocket, or
    /// the SignalR baseline's hub.</summary>
    public Uri ClientUri(string room, string name) => Target == "signalr"
        ? new UriBuilder(BaseAddress) { Path = "/hub", Query = $"room={Uri.EscapeDataString(room)}&name={Uri.EscapeDataString(name)}" }.Uri
        : new UriBuilder(BaseAddress) { Scheme = "ws", Path = $"/ws/rooms/{room}", Query = $"name={Uri.EscapeDataString(name)}" }.Uri;

    /// <summary>A full, compacting collection in the service, then its memory.</summary>
    public async Task<(long WorkingSet, long ManagedHeap, int Connections)> CollectAsync()
    {
        using HttpResponseMessage response = await Http.PostAsync("/debug/gc", content: null);
        response.EnsureSuccessStatusCode();
        JsonElement report = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (report.GetProperty("workingSetBytes").GetInt64(), report.GetProperty("managedHeapBytes").GetInt64(), report.GetProperty("connections").GetInt32());
    }

    /// <summary>The connections the service counts now.</summary>
    public async Task<int> ConnectionsAsync()
    {
        JsonElement health = await Http.GetFromJsonAsync<JsonElement>("/health/details");
        return health.GetProperty("connections").GetInt32();
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private void OnLine(string? line)
    {
        if (line is not null && ListeningLine().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
        else if (line is not null && (line.StartsWith("fail", StringComparison.Ordinal) || line.StartsWith("crit", StringComparison.Ordinal)))
        {
            Console.Error.WriteLine($"{Target}: {line}");
        }
    }

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningLine();
}
