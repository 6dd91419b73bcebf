using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests.Postgres;

public sealed class WebhooksOnPostgresTests : PostgresServiceTest
{
    private WebhookReceiver _receiver = null!;

    // Each test starts its servers with its own settings.
    private protected override bool StartsServer => false;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _receiver = Own(await WebhookReceiver.StartAsync());
    }

    [Fact]
    public async Task A_receiver_that_fails_twice_then_succeeds_gets_the_message_once_successfully()
    {
        ChatServer server = await StartServerAsync();
        await server.RegisterWebhookAsync("lobby", _receiver.Url);
        var answers = new Queue<int>([500, 503, 200]);
        _receiver.Respond = (_, _) => Task.FromResult(answers.TryDequeue(out int status) ? status : 200);

        StoredMessage message = await server.PostAsync("lobby", "ada", "hello hooks");
        WebhookOutcome[] outcomes = [await _receiver.NextOutcomeAsync(), await _receiver.NextOutcomeAsync(), await _receiver.NextOutcomeAsync()];
        await server.WaitForOutboxAsync(counts => counts.Delivered == 1);

        Assert.Equal([500, 503, 200], outcomes.Select(o => o.Status));
        Assert.Equal([1, 2, 3], outcomes.Select(o => o.Request.Attempt));
        Assert.Single(outcomes.Select(o => o.Request.Delivery).Distinct());
        Assert.All(outcomes, o => Assert.Equal(message.Id, o.Request.Message.GetProperty("id").GetInt64()));

        // Delivered means never sent again: the next request the receiver sees is the next message's.
        await server.PostAsync("lobby", "ada", "second");
        Assert.Equal("second", (await _receiver.NextOutcomeAsync()).Request.Text);
        Assert.Equal(new OutboxCounts(0, 2, 0), await server.WaitForOutboxAsync(counts => counts.Delivered == 2));
        Assert.Equal(new Dictionary<string, int> { ["hello hooks"] = 1, ["second"] = 1 }, _receiver.Delivered());
        Assert.Equal(0, await Database.ScalarAsync<long>("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"));
    }

    [Fact]
    public async Task Deliveries_cut_short_by_a_stop_are_made_after_a_restart_and_none_twice()
    {
        ChatServer first = await StartServerAsync(settings: ["Webhooks:Workers=1"]);
        await first.RegisterWebhookAsync("lobby", _receiver.Url);

        // The first delivery succeeds; the second hangs until the stop cancels it; the rest wait in the outbox.
        _receiver.Respond = async (request, ct) =>
        {
            if (request.Text == "message 2")
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            return 200;
        };
        for (int i = 1; i <= 5; i++)
        {
            await first.PostAsync("lobby", "ada", $"message {i}");
        }

        Assert.Equal("message 1", (await _receiver.NextRequestAsync()).Text);
        Assert.Equal("message 2", (await _receiver.NextRequestAsync()).Text); // hanging now
        Assert.Equal(("message 1", (int?)200), Describe(await _receiver.NextOutcomeAsync()));

        // One worker, so one job claimed at a time: the jobs behind the hanging one are not claimed by anyone.
        Assert.Equal(1, await Database.ScalarAsync<long>("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"));

        using var shutdownTimeout = new CancellationTokenSource();
        await shutdownTimeout.CancelAsync();
        await first.StopAsync(shutdownTimeout.Token);
        Assert.Equal(("message 2", (int?)null), Describe(await _receiver.NextOutcomeAsync()));

        // The stop gave up its claim, so the restart takes every job at once.
        Assert.Equal(0, await Database.ScalarAsync<long>("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"));
        _receiver.Respond = (_, _) => Task.FromResult(200);
        ChatServer second = await StartServerAsync(settings: ["Webhooks:Workers=1"]);
        Assert.Equal(new OutboxCounts(0, 5, 0), await second.WaitForOutboxAsync(counts => counts.Delivered == 5));
        Assert.Equal(Enumerable.Range(1, 5).ToDictionary(i => $"message {i}", _ => 1), _receiver.Delivered());
    }

    private static (string, int?) Describe(WebhookOutcome outcome) => (outcome.Request.Text, outcome.Status);
}
