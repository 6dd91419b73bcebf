using AsyncScopes;
using AsyncScopes.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers an <see cref="AsyncPool{T}"/> in a service collection.</summary>
public static class AsyncPoolServiceCollectionExtensions
{
    /// <summary>
    /// Registers an <see cref="AsyncPool{T}"/> as a keyed singleton named <paramref name="name"/>: created when first
    /// resolved (<c>[FromKeyedServices("name")]</c>, <c>GetRequiredKeyedService</c>), with the named options
    /// <paramref name="name"/>, validated when the host starts, and disposed asynchronously by the container, which
    /// drains it within <see cref="AsyncPoolOptions{T}.DrainTimeout"/>.
    /// </summary>
    /// <typeparam name="T">The pooled item type.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The pool's key in the container, the name of its options, and its
    /// <see cref="AsyncPoolOptions{T}.Name"/> unless they set one.</param>
    /// <param name="factory">Creates an item, with the container to resolve what it needs and the renter's token.</param>
    /// <returns>The builder of the pool's options, named <paramref name="name"/>: <c>Configure</c> sets them in code
    /// (<see cref="AsyncPoolOptions{T}.Reset"/>, the clock from the container...), <c>BindConfiguration</c> from a
    /// configuration section; every setting out of range is listed when the host starts
    /// (<see cref="OptionsValidationException"/>), not when the pool is first used. The pool keeps a copy of its
    /// options made when it is created: a reloaded configuration does not change it.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="factory"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is null, empty or white space.</exception>
    /// <exception cref="InvalidOperationException">A pool of <typeparamref name="T"/> named <paramref name="name"/> is
    /// already registered.</exception>
    public static OptionsBuilder<AsyncPoolOptions<T>> AddAsyncPool<T>(
        this IServiceCollection services,
        string name,
        Func<IServiceProvider, CancellationToken, ValueTask<T>> factory)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(factory);
        Registrations.ThrowIfTaken<AsyncPool<T>>(services, name);

        services.AddKeyedSingleton(name, (_, _) => new CreatedInstance<AsyncPool<T>, AsyncPoolOptions<T>>());
        services.AddKeyedSingleton(name, (provider, _) =>
        {
            AsyncPoolOptions<T> options = provider.GetRequiredService<IOptionsMonitor<AsyncPoolOptions<T>>>().Get(name);
            var pool = new AsyncPool<T>(cancellationToken => factory(provider, cancellationToken), options);
            return provider.GetRequiredKeyedService<CreatedInstance<AsyncPool<T>, AsyncPoolOptions<T>>>(name).Set(pool, pool.Options);
        });
        return Registrations.AddNamedOptions<AsyncPoolOptions<T>>(
            services, name, static (options, name) => options.Name ??= name, static options => options.FindProblems());
    }
}
