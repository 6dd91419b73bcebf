using AsyncScopes;

namespace OpenTelemetry.Metrics;

/// <summary>Turns on the library's metrics in OpenTelemetry.</summary>
public static class AsyncScopesMeterProviderBuilderExtensions
{
    /// <summary>Collects the instruments of <see cref="ScopeDiagnostics.MeterName"/>: open scopes, pool and queue
    /// counts, leaks, stragglers.</summary>
    /// <param name="builder">The meter provider builder.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
    public static MeterProviderBuilder AddAsyncScopesInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(ScopeDiagnostics.MeterName);
    }
}
