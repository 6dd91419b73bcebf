using System.Data.Common;
using AsyncScopes;
using Chat.Storage;
using Chat.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Chat.Tests.Postgres;

/// <summary>The outbox claims of two nodes' stores on one database, without the dispatchers that use them.</summary>
public sealed class OutboxClaimTests : IAsyncLifetime
{
    private static readonly TimeSpan Claim = TimeSpan.FromSeconds(50);

    private readonly ObservedTimeProvider _time = new();
    private PostgresDatabase _database = null!;
    private readonly List<ServiceProvider> _nodes = [];
    private ChatStore _a = null!;
    private ChatStore _b = null!;

    public async Task InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync();
        _a = await OpenStoreAsync();
        _b = await OpenStoreAsync();
    }

    public async Task DisposeAsync()
    {
        await _b.DisposeAsync();
        await _a.DisposeAsync();
        foreach (ServiceProvider node in _nodes)
        {
            await node.DisposeAsync(); // its pools and its provider
        }

        await _database.DisposeAsync();
    }

    [Fact]
    public async Task Two_nodes_claiming_at_once_take_every_due_job_and_none_twice()
    {
        await _a.AddWebhookAsync("lobby", "http://127.0.0.1:9/hook", "whsec_test", maxPerRoom: 10, CancellationToken.None);
        for (int i = 0; i < 40; i++)
        {
            await (i % 2 == 0 ? _a : _b).AppendMessageAsync(new PostedMessage("lobby", "ada", $"message {i}"));
        }

        DateTimeOffset now = _time.GetUtcNow();
        Task<List<long>>[] claiming = [ClaimAllAsync(_a, now), ClaimAllAsync(_b, now)];
        List<long>[] claimed = await Task.WhenAll(claiming);

        Assert.Empty(claimed[0].Intersect(claimed[1]));
        Assert.Equal(40, claimed[0].Count + claimed[1].Count);
        Assert.Equal(40, await _database.ScalarAsync<long>("SELECT COUNT(DISTINCT id) FROM outbox WHERE claimed_by IS NOT NULL"));
    }

    [Fact]
    public async Task A_claim_keeps_the_other_node_off_the_job_until_it_runs_out_and_then_only_the_new_holder_records()
    {
        await _a.AddWebhookAsync("lobby", "http://127.0.0.1:9/hook", "whsec_test", maxPerRoom: 10, CancellationToken.None);
        await _a.AppendMessageAsync(new PostedMessage("lobby", "ada", "one job"));
        DateTimeOffset now = _time.GetUtcNow();

        OutboxJob job = Assert.Single(await _a.ClaimDueJobsAsync(now, now + Claim, 10, [], CancellationToken.None));
        Assert.Empty(await _b.ClaimDueJobsAsync(now + Claim - TimeSpan.FromMilliseconds(1), now + Claim * 2, 10, [], CancellationToken.None));
        Assert.Equal(now + Claim, await _b.GetNextDueAsync(now, CancellationToken.None));

        // The claim has run out: B takes the job, and A, back too late, records nothing.
        Assert.Equal(job.Id, Assert.Single(await _b.ClaimDueJobsAsync(now + Claim, now + Claim * 2, 10, [], CancellationToken.None)).Id);
        Assert.False(await _a.MarkDeliveredAsync(job.Id, 1, CancellationToken.None));
        Assert.Equal(new OutboxCounts(1, 0, 0), await _a.GetOutboxCountsAsync(CancellationToken.None));
        Assert.True(await _b.RecordFailedAttemptAsync(job.Id, 1, now + Claim * 3, "HTTP 500", CancellationToken.None));

        // Rescheduled and no longer claimed: due again at its next attempt, for either node.
        Assert.Equal(now + Claim * 3, await _a.GetNextDueAsync(now + Claim, CancellationToken.None));
        Assert.Equal(job.Id, Assert.Single(await _a.ClaimDueJobsAsync(now + Claim * 3, now + Claim * 4, 10, [], CancellationToken.None)).Id);
    }

    [Fact]
    public async Task Released_claims_are_free_for_the_other_node_at_once()
    {
        await _a.AddWebhookAsync("lobby", "http://127.0.0.1:9/hook", "whsec_test", maxPerRoom: 10, CancellationToken.None);
        await _a.AppendMessageAsync(new PostedMessage("lobby", "ada", "first"));
        await _a.AppendMessageAsync(new PostedMessage("lobby", "ada", "second"));
        DateTimeOffset now = _time.GetUtcNow();
        Assert.Equal(2, (await _a.ClaimDueJobsAsync(now, now + Claim, 10, [], CancellationToken.None)).Count);
        Assert.Empty(await _b.ClaimDueJobsAsync(now, now + Claim, 10, [], CancellationToken.None));

        await _b.ReleaseClaimsAsync(CancellationToken.None); // not B's claims: nothing changes
        Assert.Empty(await _b.ClaimDueJobsAsync(now, now + Claim, 10, [], CancellationToken.None));
        await _a.ReleaseClaimsAsync(CancellationToken.None);
        Assert.Equal(2, (await _b.ClaimDueJobsAsync(now, now + Claim, 10, [], CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_claim_leaves_out_the_jobs_of_busy_destinations()
    {
        await _a.AddWebhookAsync("lobby", "http://127.0.0.1:9/hook", "whsec_test", maxPerRoom: 10, CancellationToken.None);
        await _a.AddWebhookAsync("lobby", "http://127.0.0.2:9/hook", "whsec_test", maxPerRoom: 10, CancellationToken.None);
        await _a.AppendMessageAsync(new PostedMessage("lobby", "ada", "one job each"));
        DateTimeOffset now = _time.GetUtcNow();

        OutboxJob job = Assert.Single(await _a.ClaimDueJobsAsync(now, now + Claim, 10, ["http://127.0.0.1:9/"], CancellationToken.None));

        Assert.Equal("http://127.0.0.2:9/hook", job.Url);
        await _a.ReleaseClaimAsync(job.Id, CancellationToken.None);
        Assert.Equal(2, (await _b.ClaimDueJobsAsync(now, now + Claim, 10, [], CancellationToken.None)).Count);
    }

    // Claims three at a time until nothing is left.
    private static async Task<List<long>> ClaimAllAsync(ChatStore store, DateTimeOffset now)
    {
        await Task.Yield();
        var claimed = new List<long>();
        while (await store.ClaimDueJobsAsync(now, now + Claim, 3, [], CancellationToken.None) is { Count: > 0 } jobs)
        {
            claimed.AddRange(jobs.Select(job => job.Id));
        }

        return claimed;
    }

    /// <summary>A node's store, with its pools from a container of its own, registered as the service does.</summary>
    private Task<ChatStore> OpenStoreAsync()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddOptions<DatabaseOptions>().Configure(options =>
            (options.Provider, options.ConnectionString) = (DatabaseOptions.Postgres, _database.ConnectionString));
        services.AddChatStorage();
        ServiceProvider node = services.BuildServiceProvider();
        _nodes.Add(node);
        return ChatStore.OpenAsync(
            node.GetRequiredService<DatabaseProvider>(),
            node.GetRequiredKeyedService<AsyncPool<DbConnection>>(StorageServices.Writer),
            node.GetRequiredKeyedService<AsyncPool<DbConnection>>(StorageServices.Readers),
            _time,
            hook: null,
            new NoOtherNodes(),
            Chat.Webhooks.WebhookPayload.Write,
            TimeSpan.FromSeconds(30),
            NullLoggerFactory.Instance,
            CancellationToken.None);
    }

    /// <summary>The tests read the outbox themselves.</summary>
    private sealed class NoOtherNodes : IDatabaseEvents
    {
        public void MessageCommitted(StoredMessage message, PostedMessage? posted)
        {
        }

        public void JobsAvailable()
        {
        }
    }
}
