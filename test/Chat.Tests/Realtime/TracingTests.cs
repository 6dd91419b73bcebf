using System.Diagnostics;
using AsyncScopes;
using Chat.Telemetry;
using Chat.Tests.Support;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Trace;

namespace Chat.Tests.Realtime;

/// <summary>One WebSocket message as connected spans, from its receipt to its webhook's delivery, through the real
/// OpenTelemetry SDK and its in-memory exporter.</summary>
public sealed class TracingTests : ServiceTest
{
    [Fact]
    public async Task A_message_is_received_committed_broadcast_and_delivered_to_a_webhook_as_one_trace()
    {
        string room = "traced-" + Guid.NewGuid().ToString("N")[..8];
        await using WebhookReceiver receiver = await WebhookReceiver.StartAsync();
        await Server.RegisterWebhookAsync(room, receiver.Url);
        var spans = new List<Activity>();
        var received = new TaskCompletionSource<Activity>(TaskCreationOptions.RunContinuationsAsynchronously);
        var delivered = new TaskCompletionSource<Activity>(TaskCreationOptions.RunContinuationsAsynchronously);

        // Other tests' servers deliver webhooks and broadcast in this process too: ours are the delivery and the
        // broadcast in the message's trace.
        var deliveries = new List<Activity>();
        var broadcasts = new List<Activity>();
        var broadcasted = new TaskCompletionSource<Activity>(TaskCreationOptions.RunContinuationsAsynchronously);
        ActivityTraceId? ours = null;

        // The order that once failed this test, every time: the broadcast's span ends, and reaches the exporter, only
        // after the webhook's delivery (this listener, added before the SDK's, hears of each span's end first).
        using var late = new ActivityListener
        {
            ShouldListenTo = source => source.Name == TelemetryServices.Name,
            ActivityStopped = span =>
            {
                if (span.OperationName == "chat.broadcast" && Equals(span.GetTagItem(ChatTelemetry.RoomTag), room) && !delivered.Task.IsCompleted)
                {
                    delivered.Task.Wait(ChatServer.Patience);
                }
            },
        };
        ActivitySource.AddActivityListener(late);

        // As the service traces with Telemetry settings: the WebSocket's request is the root span, sampled.
        using (Sdk.CreateTracerProviderBuilder()
            .AddAspNetCoreInstrumentation()
            .AddSource(TelemetryServices.Name)
            .AddAsyncScopesInstrumentation()
            .AddProcessor(new Serialized(spans, new SimpleActivityExportProcessor(new InMemoryExporter<Activity>(spans))))
            .AddProcessor(new WhenEnded(span =>
            {
                // The receive span ends once its commit has; the broadcast, after the commit, on the loop that
                // publishes the batches, may end before or after it.
                if (span.OperationName == "chat.receive" && Equals(span.GetTagItem(ChatTelemetry.RoomTag), room))
                {
                    received.TrySetResult(span);
                }
                else if (span.OperationName == "chat.broadcast")
                {
                    lock (deliveries)
                    {
                        broadcasts.Add(span);
                        if (span.TraceId == ours)
                        {
                            broadcasted.TrySetResult(span);
                        }
                    }
                }
                else if (span.OperationName == "chat.webhook.deliver")
                {
                    lock (deliveries)
                    {
                        deliveries.Add(span);
                        if (span.TraceId == ours)
                        {
                            delivered.TrySetResult(span);
                        }
                    }
                }
            }))
            .Build())
        {
            await using ChatClient ada = await Server.ConnectAsync(room, "ada", headers: HostileTraceContext);
            await using ChatClient grace = await Server.ConnectAsync(room, "grace");
            await ada.SendAsync("hello, trace");
            await grace.ReceiveAsync("message");
            Activity receive = await received.Task.WaitAsync(ChatServer.Patience);
            lock (deliveries)
            {
                ours = receive.TraceId;
                if (deliveries.Find(span => span.TraceId == ours) is { } early)
                {
                    delivered.TrySetResult(early);
                }

                if (broadcasts.Find(span => span.TraceId == ours) is { } broadcastFirst)
                {
                    broadcasted.TrySetResult(broadcastFirst);
                }
            }

            await delivered.Task.WaitAsync(ChatServer.Patience);
            await broadcasted.Task.WaitAsync(ChatServer.Patience);

            // What the exporter holds of the message's trace (the request and the connection's scope end later).
            Activity[] trace;
            lock (spans)
            {
                trace = [.. spans.Where(span => span.TraceId == receive.TraceId)];
            }

            Assert.Equal(
                ["chat.broadcast", "chat.commit", "chat.receive", "chat.webhook.deliver"],
                trace.Select(span => span.OperationName).Where(name => name.StartsWith("chat.", StringComparison.Ordinal)).Order());
            Activity commit = trace.Single(span => span.OperationName == "chat.commit");
            Activity delivery = trace.Single(span => span.OperationName == "chat.webhook.deliver");
            // Inside the connection's scope, inside the WebSocket's request (both still open: not exported yet).
            Assert.Equal("TaskScope", receive.Parent?.OperationName);
            Assert.Equal("Microsoft.AspNetCore.Hosting.HttpRequestIn", receive.Parent?.Parent?.OperationName);
            Activity broadcast = trace.Single(span => span.OperationName == "chat.broadcast");
            Assert.Equal(receive.SpanId, commit.ParentSpanId);
            Assert.Equal(commit.SpanId, broadcast.ParentSpanId);
            Assert.Equal(room, commit.GetTagItem(ChatTelemetry.RoomTag));
            Assert.Equal(commit.GetTagItem(ChatTelemetry.MessageIdTag), broadcast.GetTagItem(ChatTelemetry.MessageIdTag));
            Assert.Equal(room, broadcast.GetTagItem(ChatTelemetry.RoomTag));
            Assert.Equal(2, broadcast.GetTagItem(ChatTelemetry.RecipientsTag));

            // Delivered later, from the outbox, by a worker of the dispatcher: still a child of the commit.
            Assert.Equal(receive.TraceId, delivery.TraceId);
            Assert.Equal(commit.SpanId, delivery.ParentSpanId);
            Assert.Equal(commit.GetTagItem(ChatTelemetry.MessageIdTag), delivery.GetTagItem(ChatTelemetry.MessageIdTag));
            Assert.Equal(ActivityStatusCode.Unset, delivery.Status);
            WebhookOutcome outcome = await receiver.NextOutcomeAsync();
            Assert.Equal(200, outcome.Status);
            Assert.Empty(outcome.Request.TraceHeaders); // neither the service's trace context nor the client's leaves
        }
    }

    [Fact]
    public async Task Without_tracing_a_delivery_job_keeps_no_trace_context_a_client_sent()
    {
        await using WebhookReceiver receiver = await WebhookReceiver.StartAsync();
        await Server.RegisterWebhookAsync("lobby", receiver.Url);
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada", headers: HostileTraceContext);

        await ada.SendAsync("hello");
        WebhookOutcome outcome = await receiver.NextOutcomeAsync();

        // ASP.NET Core makes the request's activity from the client's traceparent even with no tracer: not the service's.
        Assert.Equal([null], await DatabaseFile.OutboxTraceParentsAsync(Directory.Path));
        Assert.Empty(outcome.Request.TraceHeaders);
    }

    // A client choosing the trace (sampled) and sending baggage, as any client may.
    private static readonly Dictionary<string, string> HostileTraceContext = new()
    {
        ["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ["tracestate"] = "mallory=1",
        ["baggage"] = "user=mallory,role=admin",
    };

    // Runs after the exporter's processor, so that a span it signals is in the exporter's list.
    private sealed class WhenEnded(Action<Activity> ended) : BaseProcessor<Activity>
    {
        public override void OnEnd(Activity data) => ended(data);
    }

    // The in-memory exporter adds to a plain list as spans end, on whatever thread ends them (other tests' too): the
    // test reads the list under the same lock.
    private sealed class Serialized(object gate, BaseProcessor<Activity> inner) : BaseProcessor<Activity>
    {
        public override void OnEnd(Activity data)
        {
            lock (gate)
            {
                inner.OnEnd(data);
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
