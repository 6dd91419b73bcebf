using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AsyncScopes.Hosting;

/// <summary>Reports a pool exhausted: renters wait while every item it may have is leased.</summary>
internal sealed class AsyncPoolHealthCheck<T>(CreatedInstance<AsyncPool<T>, AsyncPoolOptions<T>> pool) : IHealthCheck
    where T : class
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (pool.Value is not ({ } created, { } options))
        {
            return Task.FromResult(HealthCheckResult.Healthy("Not created yet."));
        }

        int maxSize = options.MaxSize;
        PoolStatistics statistics = created.Statistics;
        var data = new Dictionary<string, object>
        {
            ["size"] = statistics.Size,
            ["maxSize"] = maxSize,
            ["idle"] = statistics.Idle,
            ["inUse"] = statistics.InUse,
            ["waiters"] = statistics.Waiters,
        };
        bool exhausted = statistics.Waiters > 0 && statistics.InUse >= maxSize;
        return Task.FromResult(exhausted
            ? new HealthCheckResult(
                context.Registration.FailureStatus,
                $"Exhausted: all {maxSize} items are leased and {statistics.Waiters} renters wait.",
                data: data)
            : HealthCheckResult.Healthy($"{statistics.InUse} of {maxSize} items leased.", data));
    }
}
