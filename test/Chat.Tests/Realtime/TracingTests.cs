using System.Diagnostics;
using AsyncScopes;
using Chat.Telemetry;
using Chat.Tests.Support;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Chat.Tests.Realtime;

/// <summary>One WebSocket message as connected spans, through the real OpenTelemetry SDK and its in-memory
/// exporter.</summary>
public sealed class TracingTests : ServiceTest
{
    [Fact]
    public async Task A_message_is_received_committed_and_broadcast_as_one_trace()
    {
        string room = "traced-" + Guid.NewGuid().ToString("N")[..8];
        var spans = new List<Activity>();
        var received = new TaskCompletionSource<Activity>(TaskCreationOptions.RunContinuationsAsynchronously);
        // As the service traces with Telemetry settings: the WebSocket's request is the root span, sampled.
        using (Sdk.CreateTracerProviderBuilder()
            .AddAspNetCoreInstrumentation()
            .AddSource(TelemetryServices.Name)
            .AddAsyncScopesInstrumentation()
            .AddProcessor(new WhenEnded(span =>
            {
                // The receive span ends last, once its commit and broadcast have ended (SQLite acks inside the commit).
                if (span.OperationName == "chat.receive" && Equals(span.GetTagItem(ChatTelemetry.RoomTag), room))
                {
                    received.TrySetResult(span);
                }
            }))
            .AddInMemoryExporter(spans)
            .Build())
        {
            await using ChatClient ada = await Server.ConnectAsync(room, "ada");
            await using ChatClient grace = await Server.ConnectAsync(room, "grace");
            await ada.SendAsync("hello, trace");
            await grace.ReceiveAsync("message");
                        Activity receive = await received.Task.WaitAsync(ChatServer.Patience);

            Activity[] trace;
            lock (spans)
            {
                trace = [.. spans.Where(span => span.TraceId == receive.TraceId)];
            }

            Activity commit = Assert.Single(trace, span => span.OperationName == "chat.commit");
            // Inside the connection's scope, inside the WebSocket's request (both still open: not exported yet).
            Assert.Equal("TaskScope", receive.Parent?.OperationName);
            Assert.Equal("Microsoft.AspNetCore.Hosting.HttpRequestIn", receive.Parent?.Parent?.OperationName);
            Activity broadcast = Assert.Single(trace, span => span.OperationName == "chat.broadcast");
            Assert.Equal(receive.SpanId, commit.ParentSpanId);
            Assert.Equal(commit.SpanId, broadcast.ParentSpanId);
            Assert.Equal(room, commit.GetTagItem(ChatTelemetry.RoomTag));
            Assert.Equal(commit.GetTagItem(ChatTelemetry.MessageIdTag), broadcast.GetTagItem(ChatTelemetry.MessageIdTag));
            Assert.Equal(2, broadcast.GetTagItem(ChatTelemetry.RecipientsTag));
        }
    }

    private sealed class WhenEnded(Action<Activity> ended) : BaseProcessor<Activity>
    {
        public override void OnEnd(Activity data) => ended(data);
    }
}
