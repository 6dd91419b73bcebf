using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AsyncScopes.Hosting;

/// <summary>Reports a queue backed up: at least a given number of items wait to start.</summary>
internal sealed class WorkQueueHealthCheck<T>(CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>> queue, long maxPending) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (queue.Value is not ({ } created, { } options))
        {
            return Task.FromResult(HealthCheckResult.Healthy("Not created yet."));
        }

        WorkQueueStatistics statistics = created.Statistics;
        var data = new Dictionary<string, object>
        {
            ["pending"] = statistics.Pending,
            ["maxPending"] = maxPending,
            ["capacity"] = options.Capacity,
            ["running"] = statistics.Running,
            ["workers"] = options.Workers,
            ["completed"] = statistics.Completed,
            ["failed"] = statistics.Failed,
        };
        return Task.FromResult(statistics.Pending >= maxPending
            ? new HealthCheckResult(
                context.Registration.FailureStatus,
                $"Backed up: {statistics.Pending} items wait to start (the limit is {maxPending}).",
                data: data)
            : HealthCheckResult.Healthy($"{statistics.Pending} items wait to start.", data));
    }
}
