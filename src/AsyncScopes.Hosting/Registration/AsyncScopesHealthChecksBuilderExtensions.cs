using AsyncScopes;
using AsyncScopes.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Health checks of the pools and queues registered with
/// <see cref="AsyncPoolServiceCollectionExtensions.AddAsyncPool"/> and
/// <see cref="WorkQueueServiceCollectionExtensions.AddWorkQueue"/>.</summary>
/// <remarks>A check never creates what it checks: one not created yet is healthy. A name registered for no pool or
/// queue of that type is reported with the failure status. Each result carries the counts it judged by in its
/// data.</remarks>
public static class AsyncScopesHealthChecksBuilderExtensions
{
    /// <summary>Adds a check that reports the pool named <paramref name="poolName"/> exhausted with
    /// <paramref name="failureStatus"/>: renters wait, which they do only when all its
    /// <see cref="AsyncPoolOptions{T}.MaxSize"/> items are taken (leased, or being created or destroyed: a factory
    /// that hangs exhausts a pool too).</summary>
    /// <typeparam name="T">The pooled item type.</typeparam>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="poolName">The name the pool was registered with.</param>
    /// <param name="checkName">The check's name. Default: <c>pool:</c> and the pool's name.</param>
    /// <param name="failureStatus">The status of an exhausted pool. Default <see cref="HealthStatus.Degraded"/>: its
    /// renters wait, they do not fail, until its acquire timeout.</param>
    /// <param name="tags">Tags to filter the checks by (a readiness endpoint, say).</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="poolName"/> is null, empty or white space.</exception>
    public static IHealthChecksBuilder AddAsyncPoolCheck<T>(
        this IHealthChecksBuilder builder,
        string poolName,
        string? checkName = null,
        HealthStatus failureStatus = HealthStatus.Degraded,
        IEnumerable<string>? tags = null)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(poolName);
        return builder.Add(new HealthCheckRegistration(
            checkName ?? "pool:" + poolName,
            services => new AsyncPoolHealthCheck<T>(poolName, services.GetKeyedService<CreatedInstance<AsyncPool<T>, AsyncPoolOptions<T>>>(poolName)),
            failureStatus,
            tags));
    }

    /// <summary>Adds a check that reports the queue named <paramref name="queueName"/> backed up (at least
    /// <paramref name="maxPending"/> items wait to start, or a bounded queue is full) with
    /// <paramref name="failureStatus"/>.</summary>
    /// <typeparam name="T">The work item type.</typeparam>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="queueName">The name the queue was registered with.</param>
    /// <param name="maxPending">How many waiting items make the queue backed up; at least 1. A bounded queue full to
    /// its <see cref="WorkQueueOptions{T}.Capacity"/> is backed up too, whatever this says. <see langword="null"/>
    /// (the default): full, which needs a bounded queue (an unbounded one is reported with
    /// <paramref name="failureStatus"/>, saying so).</param>
    /// <param name="checkName">The check's name. Default: <c>queue:</c> and the queue's name.</param>
    /// <param name="failureStatus">The status of a backed-up queue. Default <see cref="HealthStatus.Degraded"/>.</param>
    /// <param name="tags">Tags to filter the checks by.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="queueName"/> is null, empty or white space.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxPending"/> is less than 1.</exception>
    public static IHealthChecksBuilder AddWorkQueueCheck<T>(
        this IHealthChecksBuilder builder,
        string queueName,
        long? maxPending = null,
        string? checkName = null,
        HealthStatus failureStatus = HealthStatus.Degraded,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(queueName);
        if (maxPending < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPending), maxPending, "maxPending must be at least 1.");
        }

        return builder.Add(new HealthCheckRegistration(
            checkName ?? "queue:" + queueName,
            services => new WorkQueueHealthCheck<T>(queueName, services.GetKeyedService<CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>>>(queueName), maxPending),
            failureStatus,
            tags));
    }
}
