using AsyncScopes;

namespace OpenTelemetry.Trace;

/// <summary>Turns on the library's spans in OpenTelemetry.</summary>
public static class AsyncScopesTracerProviderBuilderExtensions
{
    /// <summary>Collects the spans of <see cref="ScopeDiagnostics.ActivitySourceName"/>: one per
    /// <see cref="TaskScope"/> and one per pool wait that waited.</summary>
    /// <param name="builder">The tracer provider builder.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
    public static TracerProviderBuilder AddAsyncScopesInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(ScopeDiagnostics.ActivitySourceName);
    }
}
