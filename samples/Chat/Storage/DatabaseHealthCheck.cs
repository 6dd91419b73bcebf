using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Chat.Storage;

/// <summary>
/// Whether the database can be written and read now: a write through the writer (a row of the settings table) and a
/// read of it back through a reader, as every request would make them. Unhealthy when either fails (a deleted SQLite
/// file, a full disk, a server that is gone); degraded when the writer stays busy for longer than its acquire timeout.
/// </summary>
internal sealed class DatabaseHealthCheck(ChatService chat) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await chat.Store.ProbeAsync(cancellationToken).ConfigureAwait(false);
            return HealthCheckResult.Healthy("The database was written and read back.");
        }
        catch (TimeoutException)
        {
            return HealthCheckResult.Degraded("The database's writer stayed busy for longer than its acquire timeout.");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"The database could not be written or read: {e.Message}");
        }
    }
}

/// <summary>Whether the service takes connections: degraded while it stops.</summary>
internal sealed class ConnectionsHealthCheck(ChatService chat) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(chat.Hub.IsStopping
            ? HealthCheckResult.Degraded("The service is stopping: new WebSockets are refused.")
            : HealthCheckResult.Healthy($"{chat.Hub.Count} WebSockets open."));
}
