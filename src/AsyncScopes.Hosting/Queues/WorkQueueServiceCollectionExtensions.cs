using AsyncScopes;
using AsyncScopes.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a <see cref="WorkQueue{T}"/> in a service collection.</summary>
public static class WorkQueueServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="WorkQueue{T}"/> as a keyed singleton named <paramref name="name"/>: created (and its
    /// workers started) when first resolved (<c>[FromKeyedServices("name")]</c>, <c>GetRequiredKeyedService</c>), its
    /// options validated when the host starts, and drained when the host stops.
    /// </summary>
    /// <remarks>
    /// <para>Draining: once the host has stopped its hosted services (<c>IHostedLifecycleService.StoppedAsync</c>,
    /// after the ones that enqueue have stopped) and before the container is disposed (which a handler resolving
    /// services would fail on), the queue is completed: it accepts no more items, and the accepted ones have until
    /// <see cref="WorkQueueOptions{T}.DrainTimeout"/> or the host's shutdown timeout, whichever ends first; then the
    /// running handlers are cancelled and the count of items not processed is logged as a warning. Without a host,
    /// the container's asynchronous disposal completes it the same way, within its drain timeout.</para>
    /// </remarks>
    /// <typeparam name="T">The work item type.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The queue's key in the container, and its <see cref="WorkQueueOptions{T}.Name"/> unless the
    /// options give one.</param>
    /// <param name="handler">Handles one item, with the container (the root one: create a scope in the handler for
    /// scoped services) and a token that fires when the queue's drain time is over.</param>
    /// <param name="options">Creates the options in code, once each time the options of <paramref name="name"/> are
    /// made: the place for the settings configuration cannot hold (<see cref="WorkQueueOptions{T}.OnError"/>,
    /// <see cref="WorkQueueOptions{T}.Limiter"/>, <see cref="WorkQueueOptions{T}.TimeProvider"/>). It must return a new
    /// instance each time. <see langword="null"/>: the defaults.</param>
    /// <returns>The builder of the queue's named options: see
    /// <see cref="AsyncPoolServiceCollectionExtensions.AddAsyncPool"/> for what binding and validation do.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="handler"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is null, empty or white space.</exception>
    /// <exception cref="InvalidOperationException">A queue of <typeparamref name="T"/> named <paramref name="name"/> is
    /// already registered.</exception>
    public static OptionsBuilder<WorkQueueOptions<T>> AddWorkQueue<T>(
        this IServiceCollection services,
        string name,
        Func<IServiceProvider, T, CancellationToken, Task> handler,
        Func<IServiceProvider, WorkQueueOptions<T>>? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(handler);
        Registrations.ThrowIfTaken<WorkQueue<T>>(services, name);

        var created = new CreatedInstance<WorkQueue<T>, WorkQueueOptions<T>>();
        services.AddKeyedSingleton(name, created);
        services.AddKeyedSingleton(name, (provider, _) =>
        {
            WorkQueueOptions<T> settings = provider.GetRequiredService<IOptionsMonitor<WorkQueueOptions<T>>>().Get(name);
            return created.Set(new WorkQueue<T>((item, cancellationToken) => handler(provider, item, cancellationToken), settings), settings);
        });
        services.AddSingleton<IHostedService>(provider => new WorkQueueDrain<T>(
            created, name, provider.GetRequiredService<ILoggerFactory>().CreateLogger<WorkQueue<T>>()));
        return Registrations.AddNamedOptions(
            services,
            name,
            provider => options?.Invoke(provider) is { } given ? (given.Name is null ? given.WithName(name) : given) : new() { Name = name },
            queue => queue.FindProblems());
    }
}
