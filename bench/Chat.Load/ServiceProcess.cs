using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Chat.Load;

/// <summary>The chat service, <c>dotnet Chat.dll</c> from beside this program, on a fresh database in a temp folder.</summary>
internal sealed partial class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServiceProcess(Process process, string directory)
    {
        _process = process;
        _directory = directory;
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) => _listening.TrySetException(new InvalidOperationException("The service exited before it listened."));
    }

    public Uri BaseAddress { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public static async Task<ServiceProcess> StartAsync(IEnumerable<string> settings)
    {
        string directory = Directory.CreateTempSubdirectory("chat-load-").FullName;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Chat.dll"));
        start.ArgumentList.Add("--urls=http://127.0.0.1:0");
        string adminKey = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        start.Environment["Security__AdminApiKey"] = adminKey; // for /health/details; the environment, not the command line
        foreach (string setting in settings)
        {
            start.ArgumentList.Add("--" + setting);
        }

        var service = new ServiceProcess(new Process { StartInfo = start, EnableRaisingEvents = true }, directory);
        service._process.Start();
        try
        {
            service._process.BeginOutputReadLine();
            service._process.BeginErrorReadLine();
            service.BaseAddress = await service._listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch
        {
            // A service that never said it listens must not outlive the run, nor its directory.
            await service.DisposeAsync();
            throw;
        }

        service.Http = new HttpClient { BaseAddress = service.BaseAddress };
        service.Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminKey);
        return service;
    }

    public Uri WebSocketUri(string room, string name) =>
        new UriBuilder(BaseAddress) { Scheme = "ws", Path = $"/ws/rooms/{room}", Query = $"name={Uri.EscapeDataString(name)}" }.Uri;

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
            Console.Error.WriteLine($"service: {line}");
        }
    }

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningLine();
}
