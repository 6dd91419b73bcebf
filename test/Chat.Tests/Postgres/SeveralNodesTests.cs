using System.Text.Json;
using AsyncScopes;
using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests.Postgres;

/// <summary>Two nodes, two servers of the service on one PostgreSQL database.</summary>
public sealed class SeveralNodesTests : PostgresServiceTest
{
    private WebhookReceiver _receiver = null!;

    private protected override bool StartsServer => false;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _receiver = Own(await WebhookReceiver.StartAsync());
    }

    [Fact]
    public async Task A_client_on_each_node_sees_every_message_of_its_room_once_in_id_order()
    {
        ChatServer a = await StartServerAsync();
        ChatServer b = await StartServerAsync();
        await using ChatClient ada = await a.ConnectAsync("lobby", "ada");
        await using ChatClient bob = await b.ConnectAsync("lobby", "bob");
        await using ChatClient carol = await b.ConnectAsync("lobby", "carol");
        await using ChatClient eve = await a.ConnectAsync("other", "eve");

        var conversation = new Conversation(ada, bob, carol);
        (ChatClient Client, string Name)[] senders = [(ada, "ada"), (bob, "bob"), (carol, "carol")];
        for (int i = 0; i < 12; i++)
        {
            (ChatClient sender, string name) = senders[i % 3];
            await conversation.SendAsync(sender, name, $"message {i} from {name}");
        }

        List<(string Name, string Text, long Id)> sent = conversation.Sent;
        Assert.Equal(sent.Select(m => m.Id).Order(), sent.Select(m => m.Id));

        // Each client, on either node, sees the messages of both nodes once, its own included, in id order.
        foreach (ChatClient client in new[] { ada, bob, carol })
        {
            Assert.Equal(sent, await conversation.ReceivedAsync(client));
        }

        // And so does a message posted over HTTP on one node, which reaches both; the other room saw none of it.
        StoredMessage posted = await b.PostAsync("lobby", "dave", "over http");
        foreach (ChatClient client in new[] { ada, bob, carol })
        {
            JsonElement frame = await client.ReceiveAsync("message");
            Assert.Equal((posted.Id, "over http"), (frame.GetProperty("id").GetInt64(), frame.GetProperty("text").GetString()));
            Assert.Empty(client.Drain());
        }

        Assert.Empty(eve.Drain());
        Assert.Equal(sent.Select(m => m.Text).Append("over http"), (await a.HistoryAsync("lobby")).Select(m => m.Text));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Clients_on_both_nodes_see_exactly_the_acknowledged_messages_in_one_order_while_both_write_batches(int seed)
    {
        var hook = new BatchHook();
        ChatServer a = await StartServerAsync(hook: hook, settings: ConcurrentPosts.Settings);
        ChatServer b = await StartServerAsync(hook: hook, settings: ConcurrentPosts.Settings);
        await ConcurrentPosts.RunAsync([a, b], hook, seed);
    }

    [Fact]
    public async Task A_node_whose_listening_connection_breaks_connects_again_and_hands_on_what_it_missed()
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;
        var timeA = new ObservedTimeProvider();
        ChatServer a = await StartServerAsync(timeA);
        ChatServer b = await StartServerAsync();
        await using ChatClient ada = await a.ConnectAsync("lobby", "ada");
        await using ChatClient bob = await b.ConnectAsync("lobby", "bob");

        int listener = a.Service.Store.ListenerServerProcessId!.Value;
        await Database.TerminateAsync(listener);

        // A waits a second before it connects again; its clock does not move until the test says so.
        await timeA.TimersCreated(TimeSpan.FromSeconds(1), 1).WaitAsync(ChatServer.Patience);
        StoredMessage missed = await b.PostAsync("lobby", "bob", "while a was not listening");
        Assert.Equal(missed.Id, (await bob.ReceiveAsync("message")).GetProperty("id").GetInt64());
        Assert.Empty(ada.Drain());

        timeA.Advance(TimeSpan.FromSeconds(1));
        JsonElement caughtUp = await ada.ReceiveAsync("message");
        Assert.Equal((missed.Id, missed.Text), (caughtUp.GetProperty("id").GetInt64(), caughtUp.GetProperty("text").GetString()));
        Assert.NotEqual(listener, a.Service.Store.ListenerServerProcessId);

        // A listens again, and hands on nothing twice.
        StoredMessage live = await b.PostAsync("lobby", "bob", "live again");
        Assert.Equal(live.Id, (await ada.ReceiveAsync("message")).GetProperty("id").GetInt64());
        Assert.Empty(ada.Drain());

        // Stopped, the nodes leave nothing open: the listening loop that connected again ended with its node.
        await a.StopAsync();
        await b.StopAsync();
        Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, scope => scope.CreatedAt >= started);
    }

    [Fact]
    public async Task A_webhook_job_is_delivered_once_while_both_nodes_take_jobs()
    {
        ChatServer a = await StartServerAsync();
        ChatServer b = await StartServerAsync();
        ChatServer[] nodes = [a, b];
        await a.RegisterWebhookAsync("lobby", _receiver.Url);

        // Every message wakes the dispatchers of both nodes: the one that wrote it, and the other through the database.
        for (int i = 1; i <= 12; i++)
        {
            await nodes[i % 2].PostAsync("lobby", "ada", $"message {i}");
        }

        await WaitForOutboxAsync(nodes, counts => counts.Delivered == 12);

        // Whatever was delivered came before the next message's delivery, which the receiver has by now.
        await b.PostAsync("lobby", "ada", "last");
        Assert.Equal(new OutboxCounts(0, 13, 0), await WaitForOutboxAsync(nodes, counts => counts.Delivered == 13));
        Assert.All(_receiver.Outcomes, outcome => Assert.Equal(200, outcome.Status));
        Assert.Equal(13, _receiver.Outcomes.Count);
        Assert.Equal(13, _receiver.Outcomes.Select(outcome => outcome.Request.Delivery).Distinct().Count());
        Assert.Equal(
            Enumerable.Range(1, 12).Select(i => $"message {i}").Append("last").ToDictionary(text => text, _ => 1),
            _receiver.Delivered());
    }

    [Fact]
    public async Task A_job_cut_short_by_a_node_that_stops_is_delivered_by_the_other_node_at_once()
    {
        ChatServer a = await StartServerAsync();
        await a.RegisterWebhookAsync("lobby", _receiver.Url);
        int requests = 0;
        _receiver.Respond = async (_, ct) =>
        {
            if (Interlocked.Increment(ref requests) == 1)
            {
                await Task.Delay(Timeout.Infinite, ct); // the first node's attempt hangs until its stop cancels it
            }

            return 200;
        };

        await a.PostAsync("lobby", "ada", "stuck");
        await _receiver.NextRequestAsync();
        ChatServer b = await StartServerAsync();

        // The shutdown timeout runs out at once: the attempt is cut short, and the stop gives up the claim on its job.
        using var shutdownTimeout = new CancellationTokenSource();
        await shutdownTimeout.CancelAsync();
        await a.StopAsync(shutdownTimeout.Token);

        // B heard of it through the database and took the job, its clock unmoved: no claim had to run out.
        Assert.Equal(new OutboxCounts(0, 1, 0), await b.WaitForOutboxAsync(counts => counts.Delivered == 1));
        WebhookOutcome[] outcomes = [await _receiver.NextOutcomeAsync(), await _receiver.NextOutcomeAsync()];
        Assert.Equal([(1, (int?)null), (1, 200)], outcomes.Select(o => (o.Request.Attempt, o.Status)).Order());
        Assert.Equal(new Dictionary<string, int> { ["stuck"] = 1 }, _receiver.Delivered());
    }

    [Fact]
    public async Task The_claims_of_a_node_that_stops_answering_run_out_and_what_it_records_late_is_ignored()
    {
        // The two nodes' clocks start together; A's never moves, as if A had stopped running.
        var start = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        var timeA = new ObservedTimeProvider(start);
        var timeB = new ObservedTimeProvider(start);
        string[] settings = ["Webhooks:AttemptTimeout=00:00:20", "Webhooks:ClaimGrace=00:00:30"];
        var claim = TimeSpan.FromSeconds(50);

        ChatServer a = await StartServerAsync(timeA, settings: settings);
        await a.RegisterWebhookAsync("lobby", _receiver.Url);
        var firstAnswer = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        int requests = 0;
        _receiver.Respond = (_, _) => Interlocked.Increment(ref requests) == 1 ? firstAnswer.Task : Task.FromResult(200);

        await a.PostAsync("lobby", "ada", "orphan");
        await _receiver.NextRequestAsync();

        // B finds the job claimed by A and waits exactly until the claim runs out.
        ChatServer b = await StartServerAsync(timeB, settings: settings);
        await timeB.TimersCreated(claim, 1).WaitAsync(ChatServer.Patience);
        Assert.Equal(a.Service.Store.NodeId, await Database.ScalarAsync<string>("SELECT claimed_by FROM outbox"));
        Assert.Equal(1, Volatile.Read(ref requests));

        timeB.Advance(claim);
        Assert.Equal(new OutboxCounts(0, 1, 0), await b.WaitForOutboxAsync(counts => counts.Delivered == 1));

        // B's attempt is the job's first recorded one: A's, still running, was never recorded.
        WebhookRequest second = await _receiver.NextRequestAsync();
        Assert.Equal(1, second.Attempt);
        WebhookOutcome delivered = await _receiver.NextOutcomeAsync();
        Assert.Equal((second, (int?)200), (delivered.Request, delivered.Status));

        // A's attempt ends at last, in a failure: A no longer holds the claim, so the job stays delivered.
        Task recordedByA = a.Service.Webhooks.Recorded;
        firstAnswer.SetResult(500);
        await recordedByA.WaitAsync(ChatServer.Patience);
        Assert.Equal(500, (await _receiver.NextOutcomeAsync()).Status);
        Assert.Equal(new OutboxCounts(0, 1, 0), await b.OutboxAsync());
        Assert.Equal(new Dictionary<string, int> { ["orphan"] = 1 }, _receiver.Delivered());
    }

    // Waits until the outbox satisfies the condition, checking after each attempt that any of the nodes records.
    private static async Task<OutboxCounts> WaitForOutboxAsync(ChatServer[] nodes, Func<OutboxCounts, bool> condition)
    {
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        while (true)
        {
            Task recorded = Task.WhenAny(nodes.Select(node => node.Service.Webhooks.Recorded));
            OutboxCounts counts = await nodes[0].OutboxAsync();
            if (condition(counts))
            {
                return counts;
            }

            await recorded.WaitAsync(timeout.Token);
        }
    }
}
