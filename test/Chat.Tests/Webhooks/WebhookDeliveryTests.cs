using Chat.Storage;
using Chat.Tests.Support;
using Chat.Webhooks;

namespace Chat.Tests.Webhooks;

public sealed class WebhookDeliveryTests : ReceiverTest
{
    [Fact]
    public async Task A_receiver_that_fails_twice_then_succeeds_gets_the_message_once_successfully()
    {
        ChatServer server = await StartServerAsync();
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        var answers = new Queue<int>([500, 503, 200]);
        Receiver.Respond = (_, _) => Task.FromResult(answers.TryDequeue(out int status) ? status : 200);

        StoredMessage message = await server.PostAsync("lobby", "ada", "hello hooks");
        WebhookOutcome[] outcomes = [await Receiver.NextOutcomeAsync(), await Receiver.NextOutcomeAsync(), await Receiver.NextOutcomeAsync()];
        await server.WaitForOutboxAsync(counts => counts.Delivered == 1);

        Assert.Equal([500, 503, 200], outcomes.Select(o => o.Status));
        Assert.Equal([1, 2, 3], outcomes.Select(o => o.Request.Attempt));
        Assert.Single(outcomes.Select(o => o.Request.Delivery).Distinct()); // one delivery, three attempts
        Assert.All(outcomes, o => Assert.Equal(message.Id, o.Request.Message.GetProperty("id").GetInt64()));
        Assert.All(outcomes, o => Assert.Equal("hello hooks", o.Request.Text));
        Assert.Equal(new OutboxCounts(0, 1, 0), await server.OutboxAsync());

        // Delivered means never sent again: the next request the receiver sees is the next message's.
        await server.PostAsync("lobby", "ada", "second");
        WebhookOutcome next = await Receiver.NextOutcomeAsync();
        Assert.Equal("second", next.Request.Text);
        await server.WaitForOutboxAsync(counts => counts.Delivered == 2);
        Assert.Equal(new Dictionary<string, int> { ["hello hooks"] = 1, ["second"] = 1 }, Receiver.Delivered());
    }

    [Fact]
    public async Task Failed_attempts_wait_a_doubling_backoff()
    {
        // Whole seconds, none of them the attempt's deadline: the clock starts on a whole second, so the waits are exact.
        var backoff = TimeSpan.FromSeconds(10);
        ChatServer server = await StartServerAsync(
            settings: [$"Webhooks:BackoffBase={backoff}", "Webhooks:BackoffMax=00:01:00", "Webhooks:AttemptTimeout=00:01:07"]);
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        var answers = new Queue<int>([500, 500, 200]);
        Receiver.Respond = (_, _) => Task.FromResult(answers.TryDequeue(out int status) ? status : 200);

        await server.PostAsync("lobby", "ada", "patience");
        Assert.Equal(500, (await Receiver.NextOutcomeAsync()).Status);

        // The feeder waits exactly the backoff for the second attempt (the clock does not move on its own)...
        await server.Time.TimersCreated(backoff, 1).WaitAsync(ChatServer.Patience);
        Assert.True(Receiver.Outcomes.Count == 1, "A second attempt came before its backoff.");
        server.Time.Advance(backoff);
        Assert.Equal(500, (await Receiver.NextOutcomeAsync()).Status);

        // ...and twice that for the third.
        await server.Time.TimersCreated(backoff * 2, 1).WaitAsync(ChatServer.Patience);
        server.Time.Advance(backoff * 2);
        WebhookOutcome third = await Receiver.NextOutcomeAsync();
        Assert.Equal((200, 3), (third.Status, third.Request.Attempt));
        await server.WaitForOutboxAsync(counts => counts.Delivered == 1);
    }

    [Fact]
    public async Task A_receiver_that_always_fails_gets_MaxAttempts_posts_each_after_its_backoff_and_no_more()
    {
        var backoff = TimeSpan.FromSeconds(10);
        ChatServer server = await StartServerAsync(settings:
            [$"Webhooks:BackoffBase={backoff}", "Webhooks:BackoffMax=00:01:00", "Webhooks:AttemptTimeout=00:01:07", "Webhooks:MaxAttempts=3"]);
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.Respond = (_, _) => Task.FromResult(500);

        await server.PostAsync("lobby", "ada", "never taken");
        Assert.Equal(1, (await Receiver.NextOutcomeAsync()).Request.Attempt);
        for (int attempt = 2; attempt <= 3; attempt++)
        {
            TimeSpan wait = backoff * (1 << (attempt - 2));
            await server.Time.TimersCreated(wait, 1).WaitAsync(ChatServer.Patience);
            Assert.Equal(attempt - 1, Receiver.Outcomes.Count); // nothing before its backoff
            server.Time.Advance(wait);
            Assert.Equal(attempt, (await Receiver.NextOutcomeAsync()).Request.Attempt);
        }

        await server.WaitForOutboxAsync(counts => counts.Failed == 1);
        server.Time.Advance(TimeSpan.FromHours(1));
        await server.StopAsync();
        Assert.Equal([1, 2, 3], Receiver.Outcomes.Select(outcome => outcome.Request.Attempt));
    }

    [Fact]
    public async Task A_receiver_asking_for_a_day_with_Retry_After_waits_no_longer_than_BackoffMax()
    {
        // A hostile or broken receiver must not park a delivery for as long as it likes.
        var max = TimeSpan.FromSeconds(60);
        ChatServer server = await StartServerAsync(settings:
            ["Webhooks:BackoffBase=00:00:10", $"Webhooks:BackoffMax={max}", "Webhooks:AttemptTimeout=00:01:07"]);
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.RetryAfter = TimeSpan.FromDays(1);
        var answers = new Queue<int>([429, 200]);
        Receiver.Respond = (_, _) => Task.FromResult(answers.Dequeue());

        await server.PostAsync("lobby", "ada", "throttled");
        Assert.Equal(429, (await Receiver.NextOutcomeAsync()).Status);
        await server.Time.TimersCreated(max, 1).WaitAsync(ChatServer.Patience);
        server.Time.Advance(max);

        WebhookOutcome second = await Receiver.NextOutcomeAsync();
        Assert.Equal((2, (int?)200), (second.Request.Attempt, second.Status));
        await server.WaitForOutboxAsync(counts => counts.Delivered == 1);
    }

    [Fact]
    public async Task A_delivery_is_given_up_after_its_last_attempt_and_marked_failed()
    {
        ChatServer server = await StartServerAsync(settings: ["Webhooks:MaxAttempts=3"]);
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.Respond = (request, _) => Task.FromResult(request.Text == "doomed" ? 500 : 200);

        await server.PostAsync("lobby", "ada", "doomed");
        for (int attempt = 1; attempt <= 3; attempt++)
        {
            WebhookOutcome outcome = await Receiver.NextOutcomeAsync();
            Assert.Equal(("doomed", attempt, (int?)500), (outcome.Request.Text, outcome.Request.Attempt, outcome.Status));
        }

        await server.WaitForOutboxAsync(counts => counts.Failed == 1);

        // No fourth attempt: the next request is the next message's.
        await server.PostAsync("lobby", "ada", "fine");
        Assert.Equal("fine", (await Receiver.NextOutcomeAsync()).Request.Text);
        Assert.Equal(new OutboxCounts(0, 1, 1), await server.WaitForOutboxAsync(counts => counts.Delivered == 1));
    }

    [Fact]
    public async Task An_attempt_that_outlives_its_deadline_is_cancelled_and_retried()
    {
        var deadline = TimeSpan.FromSeconds(7);
        ChatServer server = await StartServerAsync(settings: [$"Webhooks:AttemptTimeout={deadline}"]);
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.Respond = async (request, ct) =>
        {
            if (request.Attempt == 1)
            {
                await Task.Delay(Timeout.Infinite, ct); // hangs until the service gives up on it
            }

            return 200;
        };

        await server.PostAsync("lobby", "ada", "slow");
        await Receiver.NextRequestAsync();
        await server.Time.TimersCreated(deadline, 1).WaitAsync(ChatServer.Patience);
        server.Time.Advance(deadline);

        // The receiver may notice the abandoned request after it has answered the retry.
        WebhookOutcome[] outcomes = [await Receiver.NextOutcomeAsync(), await Receiver.NextOutcomeAsync()];
        Assert.Equal([(1, (int?)null), (2, 200)], outcomes.Select(o => (o.Request.Attempt, o.Status)).Order());
        Assert.Equal(new OutboxCounts(0, 1, 0), await server.WaitForOutboxAsync(counts => counts.Delivered == 1));
    }

    [Fact]
    public async Task Deliveries_cut_short_by_a_stop_are_made_after_a_restart_and_none_twice()
    {
        ChatServer first = await StartServerAsync(settings: ["Webhooks:Workers=1"]);
        await first.RegisterWebhookAsync("lobby", Receiver.Url);

        // The first delivery succeeds; the second hangs until the stop cancels it; the rest wait behind it.
        Receiver.Respond = async (request, ct) =>
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

        Assert.Equal(("message 1", (int?)200), Describe(await Receiver.NextOutcomeAsync()));
        Assert.Equal("message 1", (await Receiver.NextRequestAsync()).Text);
        Assert.Equal("message 2", (await Receiver.NextRequestAsync()).Text); // hanging now

        // The shutdown timeout runs out at once: the hanging delivery is cancelled, the queued ones never start.
        using var shutdownTimeout = new CancellationTokenSource();
        await shutdownTimeout.CancelAsync();
        await first.StopAsync(shutdownTimeout.Token);
        Assert.Equal(("message 2", (int?)null), Describe(await Receiver.NextOutcomeAsync()));

        Receiver.Respond = (_, _) => Task.FromResult(200);
        ChatServer second = await StartServerAsync(settings: ["Webhooks:Workers=1"]);
        await second.WaitForOutboxAsync(counts => counts.Delivered == 5);
        Assert.Equal(new OutboxCounts(0, 5, 0), await second.OutboxAsync());
        Assert.Equal(
            Enumerable.Range(1, 5).ToDictionary(i => $"message {i}", _ => 1),
            Receiver.Delivered());
    }

    [Fact]
    public async Task A_stop_lets_the_delivery_in_flight_finish_and_leaves_the_others_in_the_outbox_for_the_next_start()
    {
        ChatServer server = await StartServerAsync(settings: ["Webhooks:Workers=1"]);
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Receiver.Respond = (request, _) => request.Text == "message 1" ? release.Task : Task.FromResult(200);
        for (int i = 1; i <= 3; i++)
        {
            await server.PostAsync("lobby", "ada", $"message {i}");
        }

        // The one worker holds message 1; messages 2 and 3 wait in the outbox while no worker is free.
        Assert.Equal("message 1", (await Receiver.NextRequestAsync()).Text);
        Task stopping = server.StopAsync();
        Assert.False(stopping.IsCompleted);
        release.SetResult(200);
        await stopping.WaitAsync(ChatServer.Patience);

        // The delivery in flight finished before the stop returned (the worker it freed may have taken message 2 before
        // the stop reached the dispatcher); what was not delivered is pending, not claimed, for the next start.
        Assert.Equal(1, Receiver.Delivered()["message 1"]);
        OutboxCounts stopped = await DatabaseFile.OutboxAsync(Directory.Path);
        Assert.Equal((3L, 0L), (stopped.Pending + stopped.Delivered, stopped.Failed));
        Assert.Equal(stopped.Delivered, Receiver.Delivered().Count);
        ChatServer restarted = await StartServerAsync();
        Assert.Equal(new OutboxCounts(0, 3, 0), await restarted.WaitForOutboxAsync(counts => counts.Delivered == 3));
        Assert.Equal(Enumerable.Range(1, 3).ToDictionary(i => $"message {i}", _ => 1), Receiver.Delivered());
    }

    [Fact]
    public async Task A_slow_destination_holds_at_most_its_share_of_the_workers_and_the_others_are_delivered_meanwhile()
    {
        // Four workers, two of them at most for one destination: the slow receiver's four webhooks get two.
        ChatServer server = await StartServerAsync(settings: ["Webhooks:Workers=4", "Webhooks:MaxPerDestination=2"]);
        WebhookReceiver fast = Own(await WebhookReceiver.StartAsync());
        for (int i = 1; i <= 4; i++)
        {
            await server.RegisterWebhookAsync("slow", new Uri(Receiver.Url, $"?n={i}"));
        }

        await server.RegisterWebhookAsync("fast", fast.Url);
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Receiver.Respond = (_, _) => release.Task;

        await server.PostAsync("slow", "ada", "to the slow one");
        await Receiver.NextRequestAsync();
        await Receiver.NextRequestAsync();
        await server.PostAsync("fast", "ada", "to the fast one");

        // Delivered while the slow receiver still holds its two: it never got a third.
        Assert.Equal("to the fast one", (await fast.NextOutcomeAsync()).Request.Text);
        Assert.Empty(Receiver.Outcomes);
        Assert.False(Receiver.TryTakeRequest(out _));
        release.SetResult(200);
        await server.WaitForOutboxAsync(counts => counts.Delivered == 5);
        Assert.Equal(new Dictionary<string, int> { ["to the slow one"] = 4 }, Receiver.Delivered());
    }

    [Fact]
    public async Task Removing_a_webhook_fails_its_pending_deliveries_and_nothing_more_is_sent_to_it()
    {
        ChatServer server = await StartServerAsync(settings: ["Webhooks:BackoffBase=00:00:10"]);
        WebhookRegistration webhook = await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.Respond = (_, _) => Task.FromResult(500);
        Task recorded = server.Service.Webhooks.Recorded;
        await server.PostAsync("lobby", "ada", "unwanted");
        await recorded.WaitAsync(ChatServer.Patience); // the failed attempt, rescheduled in 10 s of a clock that stands still
        Assert.Equal(new OutboxCounts(1, 0, 0), await server.OutboxAsync());

        using HttpResponseMessage removed = await server.Http.DeleteAsync($"/api/webhooks/{webhook.Id}");

        Assert.Equal(System.Net.HttpStatusCode.NoContent, removed.StatusCode);
        await server.StopAsync();
        Assert.Equal([("failed", 1, (string?)"the webhook was removed")], await DatabaseFile.OutboxJobsAsync(Directory.Path));
    }

    private static (string, int?) Describe(WebhookOutcome outcome) => (outcome.Request.Text, outcome.Status);
}
