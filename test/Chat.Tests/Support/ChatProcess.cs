using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Chat.Tests.Support;

/// <summary>The service as its own process (<c>dotnet Chat.dll</c>), as <c>dotnet run</c> starts it.</summary>
internal sealed partial class ChatProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChatProcess(string directory, string[] settings)
    {
        string assembly = Path.Combine(AppContext.BaseDirectory, "Chat.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in (string[])[assembly, "--urls=http://127.0.0.1:0", .. settings])
        {
            start.ArgumentList.Add(argument);
        }

        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) => _listening.TrySetException(new InvalidOperationException($"The service exited early:{Environment.NewLine}{Output}"));
    }

    public Uri BaseAddress { get; private set; } = null!;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<ChatProcess> StartAsync(string directory, params string[] settings)
    {
        var service = new ChatProcess(directory, settings.Select(setting => "--" + setting).ToArray());
        service._process.Start();
        try
        {
            service._process.BeginOutputReadLine();
            service._process.BeginErrorReadLine();
            service.BaseAddress = await service._listening.Task.WaitAsync(ChatServer.Patience);
            return service;
        }
        catch
        {
            // A service that never said it listens (or died saying why) must not outlive the test.
            await service.DisposeAsync();
            throw;
        }
    }

    public Uri WebSocketUri(string room, string name) =>
        new UriBuilder(BaseAddress) { Scheme = "ws", Path = $"/ws/rooms/{room}", Query = $"name={Uri.EscapeDataString(name)}" }.Uri;

    /// <summary>Sends a POSIX signal, as <c>kill</c> or Ctrl+C would.</summary>
    public void Signal(int signal) => Assert.Equal(0, Kill(_process.Id, signal));

    /// <summary>Waits for the process to exit and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (ListeningLine().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningLine();
}
