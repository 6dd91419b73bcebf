using AsyncScopes;
using AsyncScopes.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers an <see cref="AsyncPool{T}"/> in a service collection.</summary>
public static class AsyncPoolServiceCollectionExtensions
{
    /// <summary>
    /// Registers an <see cref="AsyncPool{T}"/> as a keyed singleton named <paramref name="name"/>: created when first
    /// resolved (<c>[FromKeyedServices("name")]</c>, <c>GetRequiredKeyedService</c>), disposed asynchronously by the
    /// container (which drains it within <see cref="AsyncPoolOptions{T}.DrainTimeout"/>), its options validated when the
    /// host starts.
    /// </summary>
    /// <typeparam name="T">The pooled item type.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The pool's key in the container, and its <see cref="AsyncPoolOptions{T}.Name"/> unless the
    /// options give one.</param>
    /// <param name="factory">Creates an item, with the container to resolve what it needs and the renter's token.</param>
    /// <param name="options">Creates the options in code, once each time the options of <paramref name="name"/> are
    /// made: the place for the settings configuration cannot hold (<see cref="AsyncPoolOptions{T}.Validate"/>,
    /// <see cref="AsyncPoolOptions{T}.Reset"/>, <see cref="AsyncPoolOptions{T}.TimeProvider"/>...). It must return a
    /// new instance each time. <see langword="null"/>: the defaults.</param>
    /// <returns>The builder of the pool's named options. Its <c>Bind</c> or <c>BindConfiguration</c> applies a
    /// configuration section on top of what <paramref name="options"/> gave (<c>MaxSize</c>, <c>MinIdle</c>, the
    /// timeouts, <c>Name</c>); its <c>Validate</c> adds checks. Every setting out of range is listed when the host
    /// starts (<see cref="OptionsValidationException"/>), not when the pool is first used. <c>Configure</c> cannot
    /// change these options: their properties are init-only; give code settings through <paramref name="options"/>.
    /// The pool reads its options once, when it is created: a reloaded configuration does not change it.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="factory"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is null, empty or white space.</exception>
    /// <exception cref="InvalidOperationException">A pool of <typeparamref name="T"/> named <paramref name="name"/> is
    /// already registered.</exception>
    public static OptionsBuilder<AsyncPoolOptions<T>> AddAsyncPool<T>(
        this IServiceCollection services,
        string name,
        Func<IServiceProvider, CancellationToken, ValueTask<T>> factory,
        Func<IServiceProvider, AsyncPoolOptions<T>>? options = null)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(factory);
        Registrations.ThrowIfTaken<AsyncPool<T>>(services, name);

        var created = new CreatedInstance<AsyncPool<T>, AsyncPoolOptions<T>>();
        services.AddKeyedSingleton(name, created);
        services.AddKeyedSingleton(name, (provider, _) =>
        {
            AsyncPoolOptions<T> settings = provider.GetRequiredService<IOptionsMonitor<AsyncPoolOptions<T>>>().Get(name);
            return created.Set(new AsyncPool<T>(cancellationToken => factory(provider, cancellationToken), settings), settings);
        });
        return Registrations.AddNamedOptions(
            services,
            name,
            provider => options?.Invoke(provider) is { } given ? (given.Name is null ? given.WithName(name) : given) : new() { Name = name },
            pool => pool.FindProblems());
    }
}
