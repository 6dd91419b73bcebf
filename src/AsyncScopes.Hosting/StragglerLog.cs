using Microsoft.Extensions.Logging;

namespace AsyncScopes.Hosting;

/// <summary>Logs the stragglers of one scope while it is watched: <see cref="ScopeDiagnostics.Straggler"/> serves every
/// scope of the process, and holds whoever listens until <see cref="Stop"/>.</summary>
/// <param name="logger">Where the stragglers are logged.</param>
/// <param name="scope">The scope watched; <see langword="null"/> while it does not exist yet.</param>
internal sealed class StragglerLog(ILogger logger, Func<TaskScope?> scope)
{
    public void Start() => ScopeDiagnostics.Straggler += OnStraggler;

    public void Stop() => ScopeDiagnostics.Straggler -= OnStraggler;

    private void OnStraggler(object? sender, ScopeStragglerEventArgs e)
    {
        if (scope() is { } watched && ReferenceEquals(sender, watched))
        {
            HostingLog.Straggler(logger, e.ChildName ?? "An unnamed child", e.ScopeName, e.Waited);
        }
    }
}
