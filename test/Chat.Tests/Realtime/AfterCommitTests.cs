using System.Diagnostics;
using System.Text.Json;
using Chat.Telemetry;
using Chat.Tests.Support;

namespace Chat.Tests.Realtime;

/// <summary>A failure after a message was committed is never reported to its sender as "not stored", which would make
/// the sender send it again, and store it twice.</summary>
public sealed class AfterCommitTests : ServiceTest
{
    [Fact]
    public async Task A_failure_while_broadcasting_a_committed_message_still_acks_it_and_never_says_not_stored()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");

        // A broken telemetry listener: starting the broadcast's span throws, after the commit.
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == TelemetryServices.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = span =>
            {
                if (span.OperationName == "chat.broadcast")
                {
                    throw new InvalidOperationException("the listener broke");
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        await ada.SendAsync("sent once");
        JsonElement answer = await ada.ReceiveAsync();

        Assert.Equal("ack", ChatClient.TypeOf(answer));
        Assert.Single(await Server.HistoryAsync("lobby"), message => message.Text == "sent once");
        Assert.Contains(Server.Logs.Lines, line => line.Contains("was committed, but not broadcast", StringComparison.Ordinal));
        Assert.DoesNotContain(Server.Logs.Lines, line => line.Contains("was not stored", StringComparison.Ordinal));
    }
}
