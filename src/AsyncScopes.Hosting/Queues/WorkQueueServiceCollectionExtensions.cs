using AsyncScopes;
using AsyncScopes.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a <see cref="WorkQueue{T}"/> in a service collection.</summary>
public static class WorkQueueServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="WorkQueue{T}"/> as a keyed singleton named <paramref name="name"/>: created (and its
    /// workers started) when first resolved (<c>[FromKeyedServices("name")]</c>, <c>GetRequiredKeyedService</c>), with
    /// the named options <paramref name="name"/>, validated when the host starts, and drained when the host stops.
    /// </summary>
    /// <typeparam name="T">The work item type.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The queue's key in the container, the name of its options, and its
    /// <see cref="WorkQueueOptions{T}.Name"/> unless they set one.</param>
    /// <param name="handler">Handles one item, with the container (the root one: create a scope in the handler for
    /// scoped services) and a token that fires when the queue's drain time is over.</param>
    /// <returns>The builder of the queue's options, named <paramref name="name"/>: see
    /// <see cref="AsyncPoolServiceCollectionExtensions.AddAsyncPool"/>.</returns>
    /// <remarks>
    /// <para>Draining: once the host has stopped its hosted services (<c>IHostedLifecycleService.StoppedAsync</c>, so
    /// after ASP.NET Core's server and every hosted service's <c>StopAsync</c>) and before the container is disposed
    /// (which a handler resolving services would fail on), the queues created are completed one after the other, in
    /// the order they were registered: register a queue whose handlers enqueue into another before that other. Each
    /// accepts no more items, and its accepted ones have until its <see cref="WorkQueueOptions{T}.DrainTimeout"/> or
    /// the host's shutdown timeout, whichever ends first; then its running handlers are cancelled, a handler still
    /// running then is logged as a warning (and still awaited), and the count of items not processed is logged as a
    /// warning. A queue whose owner began to complete it before (<see cref="WorkQueue{T}.CompleteAsync"/>, to act on
    /// its result) is left to that owner: only waited for, without a deadline or a log of its own. A queue first created after that (or without a host) is completed by the
    /// container's asynchronous disposal, within its drain timeout.</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="handler"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is null, empty or white space.</exception>
    /// <exception cref="InvalidOperationException">A queue of <typeparamref name="T"/> named <paramref name="name"/> is
    /// already registered.</exception>
    public static OptionsBuilder<WorkQueueOptions<T>> AddWorkQueue<T>(
        this IServiceCollection services,
        string name,
        Func<IServiceProvider, T, CancellationToken, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(handler);
        Registrations.ThrowIfTaken<WorkQueue<T>>(services, name);

        services.AddKeyedSingleton(name, (_, _) => new CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>>());
        services.AddKeyedSingleton(name, (provider, _) =>
        {
            WorkQueueOptions<T> options = provider.GetRequiredService<IOptionsMonitor<WorkQueueOptions<T>>>().Get(name);
            var queue = new WorkQueue<T>((item, cancellationToken) => handler(provider, item, cancellationToken), options);
            return provider.GetRequiredKeyedService<CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>>>(name).Set(queue, queue.Options);
        });
        services.AddSingleton<IDrainableQueue>(provider => new DrainableQueue<T>(
            name, provider.GetRequiredKeyedService<CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>>>(name)));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WorkQueueDrain>());
        return Registrations.AddNamedOptions<WorkQueueOptions<T>>(
            services, name, static (options, name) => options.Name ??= name, static options => options.FindProblems());
    }
}
