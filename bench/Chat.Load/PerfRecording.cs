using System.Diagnostics;

namespace Chat.Load;

/// <summary>
/// Linux perf sampling processes (<c>perf record -p</c>) until stopped: the profile of a server, all of its nodes
/// together, over one phase of the load. perf must be installed (<c>bench/profile.sh</c> installs it).
/// </summary>
internal sealed class PerfRecording : IAsyncDisposable
{
    private readonly Process _perf;

    private PerfRecording(Process perf) => _perf = perf;

    /// <summary>Starts sampling <paramref name="processIds"/> at 999 Hz into <paramref name="output"/>, and returns once
    /// perf has attached (its first line on standard error).</summary>
    public static async Task<PerfRecording> StartAsync(IEnumerable<int> processIds, string output)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var start = new ProcessStartInfo("perf") { RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[] { "record", "-F", "999", "-p", string.Join(',', processIds), "-o", output })
        {
            start.ArgumentList.Add(argument);
        }

        var perf = Process.Start(start) ?? throw new InvalidOperationException("perf did not start.");
        var attached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        perf.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"perf: {e.Data}");
            }

            attached.TrySetResult();
        };
        perf.BeginErrorReadLine();

        // perf says nothing until it stops, unless it fails; a short wait lets it attach before the load begins.
        await Task.WhenAny(attached.Task, Task.Delay(TimeSpan.FromSeconds(1)));
        if (perf.HasExited)
        {
            throw new InvalidOperationException($"perf record exited with {perf.ExitCode}.");
        }

        return new PerfRecording(perf);
    }

    /// <summary>Stops sampling (SIGINT, as Ctrl+C) and waits for perf to write its data.</summary>
    public async Task StopAsync()
    {
        if (_perf.HasExited)
        {
            return;
        }

        using (var interrupt = Process.Start("kill", ["-INT", _perf.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await interrupt.WaitForExitAsync();
        }

        await _perf.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _perf.Dispose();
    }
}
