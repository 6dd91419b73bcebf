using Chat.Tests.Support;

namespace Chat.Tests.Webhooks;

/// <summary>An outbox of an earlier version, without the column that keeps a delivery's trace context.</summary>
public sealed class OutboxSchemaTests : ServiceTest
{
    [Fact]
    public async Task A_file_whose_outbox_has_no_trace_column_gets_it_at_the_start_and_delivers()
    {
        await Server.StopAsync();
        await DatabaseFile.ExecuteAsync(Directory.Path, "ALTER TABLE outbox DROP COLUMN trace_parent"); // as an earlier version left it

        ChatServer restarted = await StartServerAsync();
        await using WebhookReceiver receiver = await WebhookReceiver.StartAsync();
        await restarted.RegisterWebhookAsync("lobby", receiver.Url);
        await restarted.PostAsync("lobby", "ada", "after the upgrade");

        Assert.Equal(1, (await restarted.WaitForOutboxAsync(counts => counts.Delivered == 1)).Delivered);
    }
}
