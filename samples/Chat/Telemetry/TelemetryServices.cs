using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Chat.Telemetry;

/// <summary>The service's traces and metrics over OpenTelemetry, when <see cref="TelemetryOptions"/> asks for them:
/// the spans of the requests, of the library's scopes and pool waits and of <see cref="ChatTelemetry"/>; the server's
/// and the library's metrics.</summary>
internal static class TelemetryServices
{
    /// <summary>The service's name in the telemetry, and its own <see cref="System.Diagnostics.ActivitySource"/>'s.</summary>
    public const string Name = "Chat";

    public static void AddChatTelemetry(this WebApplicationBuilder builder)
    {
        TelemetryOptions settings = builder.Configuration.GetSection(TelemetryOptions.Section).Get<TelemetryOptions>() ?? new();
        if (!settings.Enabled || settings.Validate().Any())
        {
            return; // nothing asked for, or settings the start refuses with the others (ChatApp's validation)
        }

        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(Name))
            .WithTracing(tracing =>
            {
                tracing.AddAspNetCoreInstrumentation().AddAsyncScopesInstrumentation().AddSource(Name);
                AddExporters(settings, "v1/traces", tracing.AddConsoleExporter, tracing.AddOtlpExporter);
            })
            .WithMetrics(metrics =>
            {
                metrics.AddAspNetCoreInstrumentation().AddAsyncScopesInstrumentation();
                AddExporters(settings, "v1/metrics", metrics.AddConsoleExporter, metrics.AddOtlpExporter);
            });
    }

    private static void AddExporters<TBuilder>(
        TelemetryOptions settings, string httpPath, Func<TBuilder> addConsole, Func<Action<OtlpExporterOptions>, TBuilder> addOtlp)
    {
        if (settings.Console)
        {
            addConsole();
        }

        if (settings.Endpoint is { } endpoint)
        {
            // An endpoint set in code is used as it is: over HTTP, each signal has its own path under the base.
            bool grpc = settings.OtlpProtocol == "grpc";
            addOtlp(otlp =>
            {
                otlp.Protocol = grpc ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                otlp.Endpoint = grpc ? new Uri(endpoint) : new Uri(new Uri(endpoint.TrimEnd('/') + "/"), httpPath);
            });
        }
    }
}
