using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AsyncScopes.Hosting;

/// <summary>Reports a queue backed up: at least a given number of items wait to start, or a bounded queue is full.</summary>
internal sealed class WorkQueueHealthCheck<T>(string name, CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>>? queue, long? maxPending) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (queue is null)
        {
            return Task.FromResult(new HealthCheckResult(
                context.Registration.FailureStatus, $"No {Registrations.TypeName(typeof(WorkQueue<T>))} named '{name}' is registered."));
        }

        if (queue.Value is not ({ } created, { } options))
        {
            return Task.FromResult(HealthCheckResult.Healthy("Not created yet."));
        }

        // A bounded queue never holds more than its capacity: full is as backed up as it gets.
        if ((options.Capacity > 0 ? Math.Min(maxPending ?? long.MaxValue, options.Capacity) : maxPending) is not long limit)
        {
            return Task.FromResult(new HealthCheckResult(
                context.Registration.FailureStatus, $"'{name}' is unbounded: its check needs the number of waiting items that makes it backed up (maxPending)."));
        }

        WorkQueueStatistics statistics = created.Statistics;
        var data = new Dictionary<string, object>
        {
            ["pending"] = statistics.Pending,
            ["maxPending"] = limit,
            ["capacity"] = options.Capacity,
            ["running"] = statistics.Running,
            ["workers"] = options.Workers,
            ["completed"] = statistics.Completed,
            ["failed"] = statistics.Failed,
        };
        return Task.FromResult(statistics.Pending >= limit
            ? new HealthCheckResult(
                context.Registration.FailureStatus,
                $"Backed up: {statistics.Pending} items wait to start (the limit is {limit}).",
                data: data)
            : HealthCheckResult.Healthy($"{statistics.Pending} items wait to start.", data));
    }
}
