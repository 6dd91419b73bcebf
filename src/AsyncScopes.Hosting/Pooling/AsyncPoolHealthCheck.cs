using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AsyncScopes.Hosting;

/// <summary>Reports a pool exhausted: renters wait. A renter waits only when every item the pool may have is taken
/// (leased, or being created or destroyed) or others wait before it.</summary>
internal sealed class AsyncPoolHealthCheck<T>(string name, CreatedInstance<AsyncPool<T>, AsyncPoolOptions<T>>? pool) : IHealthCheck
    where T : class
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (pool is null)
        {
            return Task.FromResult(new HealthCheckResult(
                context.Registration.FailureStatus, $"No {Registrations.TypeName(typeof(AsyncPool<T>))} named '{name}' is registered."));
        }

        if (pool.Value is not ({ } created, { } options))
        {
            return Task.FromResult(HealthCheckResult.Healthy("Not created yet."));
        }

        PoolStatistics statistics = created.Statistics;
        var data = new Dictionary<string, object>
        {
            ["size"] = statistics.Size,
            ["maxSize"] = options.MaxSize,
            ["idle"] = statistics.Idle,
            ["inUse"] = statistics.InUse,
            ["waiters"] = statistics.Waiters,
        };
        return Task.FromResult(statistics.Waiters > 0
            ? new HealthCheckResult(
                context.Registration.FailureStatus,
                $"Exhausted: {statistics.Waiters} renters wait; {statistics.InUse} of {options.MaxSize} items are leased.",
                data: data)
            : HealthCheckResult.Healthy($"{statistics.InUse} of {options.MaxSize} items are leased.", data));
    }
}
