using AsyncScopes.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a <see cref="HostedTaskScope"/> in a service collection.</summary>
public static class HostedTaskScopeServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="HostedTaskScope"/> named <paramref name="name"/>: a keyed singleton
    /// (<c>[FromKeyedServices("name")]</c>, <c>GetRequiredKeyedService</c>) that is also a hosted service, so that the
    /// host creates it as it starts, stops it as it begins to stop, and the container disposes it.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The scope's key in the container, the name of its options, and its name in diagnostics.</param>
    /// <returns>The builder of the scope's options, named <paramref name="name"/>: <c>Configure</c> sets them in code (the
    /// clock from the container), <c>BindConfiguration</c> from a configuration section; every setting out of range is
    /// listed when the host starts (<see cref="OptionsValidationException"/>). The scope reads them once, when it is
    /// created.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is null, empty or white space.</exception>
    /// <exception cref="InvalidOperationException">A hosted scope named <paramref name="name"/> is already registered.</exception>
    public static OptionsBuilder<HostedTaskScopeOptions> AddHostedTaskScope(this IServiceCollection services, string name)
    {
        ArgumentNullException.ThrowIfNull(services);
        Registrations.ThrowIfTaken<HostedTaskScope>(services, name);

        services.AddKeyedSingleton(name, (provider, _) => new HostedTaskScope(
            name,
            provider.GetRequiredService<IOptionsMonitor<HostedTaskScopeOptions>>().Get(name),
            provider.GetRequiredService<IHostApplicationLifetime>(),
            provider.GetRequiredService<ILogger<HostedTaskScope>>()));
        services.AddSingleton<IHostedService>(provider => provider.GetRequiredKeyedService<HostedTaskScope>(name));
        return Registrations.AddNamedOptions<HostedTaskScopeOptions>(services, name, static (_, _) => { }, static options => options.FindProblems());
    }
}
