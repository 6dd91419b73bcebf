using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace AsyncScopes.Hosting.Tests;

/// <summary>The OpenTelemetry builder extensions, through the real SDK and its in-memory exporter.</summary>
public sealed class InstrumentationTests
{
    [Fact]
    public async Task The_tracer_provider_exports_the_spans_of_scopes()
    {
        var spans = new List<Activity>();
        using (var tracing = Sdk.CreateTracerProviderBuilder().AddAsyncScopesInstrumentation().AddInMemoryExporter(spans).Build())
        {
            await TaskScope.RunAsync(scope => Task.CompletedTask, options: new TaskScopeOptions { Name = "instrumented scope" });
        }

        Assert.Contains(spans, span => span.Source.Name == ScopeDiagnostics.ActivitySourceName && span.DisplayName == "TaskScope instrumented scope");
    }

    [Fact]
    public async Task The_meter_provider_exports_the_metrics_of_queues()
    {
        var metrics = new List<Metric>();
        using (var metering = Sdk.CreateMeterProviderBuilder().AddAsyncScopesInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            await using (var queue = new WorkQueue<int>((_, _) => Task.CompletedTask, new() { Name = "instrumented queue" }))
            {
                await queue.EnqueueAsync(1);
                await queue.CompleteAsync();
            }

            metering.ForceFlush();
        }

        Assert.Contains(metrics, metric => metric.MeterName == ScopeDiagnostics.MeterName && metric.Name == "asyncscopes.queue.items.completed");
    }
}
