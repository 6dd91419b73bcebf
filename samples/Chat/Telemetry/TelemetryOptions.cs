namespace Chat.Telemetry;

/// <summary>Where the service sends its traces and metrics: section <c>Telemetry</c> of the configuration. Neither set
/// (the default): nowhere, and nothing is collected.</summary>
internal sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>An OpenTelemetry collector's OTLP endpoint, or null: <c>http://127.0.0.1:4317</c> for gRPC; for
    /// HTTP/protobuf (<see cref="OtlpProtocol"/>) its base, <c>http://127.0.0.1:4318</c>, to which the service adds
    /// <c>/v1/traces</c> and <c>/v1/metrics</c>.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (the default) or <c>http/protobuf</c>.</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Writes every span and metric to the console, for a person trying the service.</summary>
    public bool Console { get; set; }

    /// <summary>True when anything is to be collected.</summary>
    public bool Enabled => Console || Endpoint is not null;

    /// <summary><see cref="OtlpEndpoint"/>, or null when it is not set or empty (<c>Telemetry__OtlpEndpoint=</c>).</summary>
    public string? Endpoint => string.IsNullOrWhiteSpace(OtlpEndpoint) ? null : OtlpEndpoint;

    /// <summary>Every problem of these settings, in words.</summary>
    public IEnumerable<string> Validate()
    {
        if (Endpoint is not null
            && !(Uri.TryCreate(Endpoint, UriKind.Absolute, out Uri? endpoint) && endpoint.Scheme is "http" or "https"))
        {
            yield return "Telemetry:OtlpEndpoint must be an absolute http or https URL.";
        }

        if (OtlpProtocol is not ("grpc" or "http/protobuf"))
        {
            yield return "Telemetry:OtlpProtocol must be grpc or http/protobuf.";
        }
    }
}
