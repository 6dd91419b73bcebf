using System.Diagnostics;
using System.Net.Http.Json;
using System.Data.Common;
using Chat.Storage;
using Chat.Tests.Support;
using Microsoft.Data.Sqlite;

namespace Chat.Tests.Storage;

/// <summary>The writer stores the messages that wait for it together, one transaction per batch.</summary>
public sealed class GroupCommitTests : ServiceTest
{
    private readonly BatchHook _hook = new();

    internal override IMessageWriteHook Hook => _hook;

    [Fact]
    public async Task Messages_posted_while_a_batch_commits_are_written_in_the_next_one_transaction_in_the_order_posted()
    {
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");
        (Task<StoredMessage> first, TaskCompletionSource release) = await HoldFirstBatchAsync();

        // Queued while the writer is busy with "first": posting is synchronous up to the queue.
        string[] queued = ["one", "two", "three", "four", "five"];
        Task<StoredMessage>[] posts = [.. queued.Select(text => Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", text)))];
        Assert.All(posts, post => Assert.False(post.IsCompleted));
        release.SetResult();

        StoredMessage[] stored = await Task.WhenAll(posts).WaitAsync(ChatServer.Patience);
        DbTransaction batch = Assert.Single(_hook.WrittenIn["one"]);
        Assert.NotSame(Assert.Single(_hook.WrittenIn["first"]), batch);
        Assert.All(queued, text => Assert.Same(batch, Assert.Single(_hook.WrittenIn[text])));
        long firstId = (await first).Id;
        Assert.Equal(Enumerable.Range(1, queued.Length).Select(i => firstId + i), stored.Select(m => m.Id));

        // Broadcast in id order, each once.
        Assert.Equal(["first", .. queued], await ReceiveTextsAsync(bob, queued.Length + 1));
        Assert.Empty(bob.Drain());
    }

    [Fact]
    public async Task A_message_that_fails_in_its_batch_fails_alone_and_the_others_are_stored_in_order()
    {
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");
        (Task<StoredMessage> first, TaskCompletionSource release) = await HoldFirstBatchAsync();

        _hook.Fail("doomed");
        Task<StoredMessage> before = Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "before"));
        Task<StoredMessage> doomed = Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "doomed"));
        Task<StoredMessage> after = Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "after"));
        release.SetResult();

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => doomed.WaitAsync(ChatServer.Patience));
        Assert.Equal("Injected failure of 'doomed'.", failure.Message);
        StoredMessage[] stored = await Task.WhenAll(first, before, after).WaitAsync(ChatServer.Patience);
        Assert.True(stored[1].Id < stored[2].Id);
        // "before" was written with "doomed", then again with "after", without it; "doomed" was not written again.
        DbTransaction failed = Assert.Single(_hook.WrittenIn["doomed"]);
        Assert.Equal(2, _hook.WrittenIn["before"].Count);
        Assert.Same(failed, _hook.WrittenIn["before"][0]);
        Assert.Same(_hook.WrittenIn["before"][1], Assert.Single(_hook.WrittenIn["after"]));
        Assert.NotSame(failed, _hook.WrittenIn["before"][1]);

        Assert.Equal(["first", "before", "after"], await ReceiveTextsAsync(bob, 3));
        Assert.Equal(["first", "before", "after"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.Empty(bob.Drain());
    }

    [Fact]
    public async Task A_message_the_database_refuses_fails_alone_and_the_others_of_its_batch_are_stored_in_order()
    {
        // A rule of the database's own: the statement that writes the message fails, inside the batch.
        await DatabaseFile.ExecuteAsync(Directory.Path, """
            CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.text = 'refused'
            BEGIN SELECT RAISE(ABORT, 'refused by the database'); END
            """);
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");
        (Task<StoredMessage> first, TaskCompletionSource release) = await HoldFirstBatchAsync();

        Task<StoredMessage>[] posts = [.. new[] { "before", "refused", "after" }.Select(text => Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", text)))];
        release.SetResult();

        var failure = await Assert.ThrowsAsync<SqliteException>(() => posts[1].WaitAsync(ChatServer.Patience));
        Assert.Contains("refused by the database", failure.Message, StringComparison.Ordinal);
        StoredMessage[] stored = await Task.WhenAll(first, posts[0], posts[2]).WaitAsync(ChatServer.Patience);
        Assert.True(stored[0].Id < stored[1].Id && stored[1].Id < stored[2].Id);
        Assert.False(_hook.WrittenIn.ContainsKey("refused"));
        Assert.Same(_hook.WrittenIn["before"][^1], Assert.Single(_hook.WrittenIn["after"]));

        Assert.Equal(["first", "before", "after"], await ReceiveTextsAsync(bob, 3));
        Assert.Equal(["first", "before", "after"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.Empty(bob.Drain());
    }

    [Fact]
    public async Task A_room_whose_summary_the_database_refuses_fails_its_messages_and_the_other_rooms_are_stored()
    {
        // A rule of the database's own on the rooms' summaries, which the batch writes once per room after the messages.
        await DatabaseFile.ExecuteAsync(Directory.Path, """
            CREATE TRIGGER refuse_room BEFORE INSERT ON rooms WHEN NEW.name = 'cursed'
            BEGIN SELECT RAISE(ABORT, 'room refused by the database'); END
            """);
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");
        (Task<StoredMessage> first, TaskCompletionSource release) = await HoldFirstBatchAsync();

        Task<StoredMessage>[] posts =
        [
            Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "before")),
            Server.Service.Store.AppendMessageAsync(new PostedMessage("cursed", "ada", "cursed one")),
            Server.Service.Store.AppendMessageAsync(new PostedMessage("cursed", "ada", "cursed two")),
            Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "after")),
        ];
        release.SetResult();

        foreach (Task<StoredMessage> cursed in posts[1..3])
        {
            var failure = await Assert.ThrowsAsync<SqliteException>(() => cursed.WaitAsync(ChatServer.Patience));
            Assert.Contains("room refused by the database", failure.Message, StringComparison.Ordinal);
        }

        StoredMessage[] stored = await Task.WhenAll(first, posts[0], posts[3]).WaitAsync(ChatServer.Patience);
        Assert.True(stored[0].Id < stored[1].Id && stored[1].Id < stored[2].Id);
        Assert.Same(Assert.Single(_hook.WrittenIn["before"]), Assert.Single(_hook.WrittenIn["after"])); // the retry's
        Assert.False(_hook.WrittenIn.ContainsKey("cursed one"));
        Assert.Equal(["first", "before", "after"], await ReceiveTextsAsync(bob, 3));
        Assert.Equal(["first", "before", "after"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.Empty(await Server.HistoryAsync("cursed"));
        Assert.Empty(bob.Drain());

        // A batch of that room alone fails whole; the rooms' summaries count what was stored.
        await Assert.ThrowsAsync<SqliteException>(() => Server.Service.Store.AppendMessageAsync(new PostedMessage("cursed", "ada", "alone")).WaitAsync(ChatServer.Patience));
        System.Text.Json.JsonElement room = Assert.Single((await Server.Http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/rooms")).GetProperty("rooms").EnumerateArray());
        Assert.Equal(("lobby", 3, stored[2].Id), (room.GetProperty("name").GetString(), room.GetProperty("messages").GetInt64(), room.GetProperty("lastMessageId").GetInt64()));
    }

    [Fact]
    public async Task A_fault_of_the_database_itself_fails_every_message_of_the_batch_and_the_next_batch_is_stored()
    {
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");
        (Task<StoredMessage> first, TaskCompletionSource release) = await HoldFirstBatchAsync();
        _hook.Fail("disk", () => new SqliteException("disk I/O error", SQLitePCL.raw.SQLITE_IOERR));
        Task<StoredMessage>[] batch = [.. new[] { "before", "disk", "after" }.Select(text => Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", text)))];
        release.SetResult();

        foreach (Task<StoredMessage> post in batch)
        {
            await Assert.ThrowsAsync<SqliteException>(() => post.WaitAsync(ChatServer.Patience));
        }

        Assert.Single(_hook.WrittenIn["disk"]);
        Assert.Single(_hook.WrittenIn["before"]); // not written again without it
        Assert.False(_hook.WrittenIn.ContainsKey("after"));
        await first.WaitAsync(ChatServer.Patience);
        StoredMessage next = await Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "next"));
        Assert.Equal(["first", "next"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.Equal(["first", "next"], await ReceiveTextsAsync(bob, 2));
        Assert.True(next.Id > (await first).Id);
    }

    [Fact]
    public async Task A_message_that_waited_for_its_batch_longer_than_the_writer_timeout_fails_and_is_never_stored()
    {
        // Long enough that the writer, which takes each post at once while it is free, never keeps one waiting that long
        // on a busy machine: only the hold below does.
        TimeSpan timeout = TimeSpan.FromSeconds(1);
        ChatServer server = await StartServerAsync(hook: _hook, settings: [$"Database:WriterAcquireTimeout={timeout:c}"]);
        (Task<StoredMessage> first, TaskCompletionSource release) = await _hook.HoldBatchOfAsync(server, "first");
        Task<StoredMessage> late = server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "late"));
        long queued = Stopwatch.GetTimestamp(); // after the post was queued, which is where its wait starts

        // The wait is measured in real time, as the writer pool's acquire timeout is: that much of it passes, while the
        // writer is held, before the writer goes on.
        SpinWait.SpinUntil(() => Stopwatch.GetElapsedTime(queued) > timeout);
        release.SetResult();

        var failure = await Assert.ThrowsAsync<TimeoutException>(() => late.WaitAsync(ChatServer.Patience));
        Assert.Contains("database is busy", failure.Message, StringComparison.Ordinal);
        await first.WaitAsync(ChatServer.Patience);
        Assert.False(_hook.WrittenIn.ContainsKey("late"));
        StoredMessage next = await server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "next"));
        Assert.Equal((await first).Id + 1, next.Id);
        Assert.Equal(["first", "next"], (await server.HistoryAsync("lobby")).Select(m => m.Text));
    }

    [Fact]
    public async Task Messages_queued_when_the_service_stops_are_stored_and_a_post_after_that_is_refused()
    {
        (Task<StoredMessage> first, TaskCompletionSource release) = await HoldFirstBatchAsync();
        Task<StoredMessage> queued = Server.Service.Store.AppendMessageAsync(new PostedMessage("lobby", "ada", "queued"));
        Task stopping = Server.StopAsync();
        release.SetResult();
        await stopping.WaitAsync(ChatServer.Patience);

        Assert.Equal("queued", (await queued.WaitAsync(ChatServer.Patience)).Text);
        await first;
        Assert.Equal(["first", "queued"], await DatabaseFile.MessageTextsAsync(Directory.Path));
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(
            () => Server.Service.PostAsync("lobby", "ada", "late", sender: null, CancellationToken.None));
        Assert.Contains("closing", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_error_for_a_frame_comes_after_the_ack_of_the_message_before_it()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");

        // The publisher stops as it begins to hand "first" on, before its ack: the message is committed, its post done.
        var publishing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == Chat.Telemetry.TelemetryServices.Name,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) =>
                System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = span =>
            {
                if (span.OperationName == "chat.broadcast" && publishing.TrySetResult())
                {
                    release.Task.Wait(ChatServer.Patience);
                }
            },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);

        await ada.SendAsync("first");
        await publishing.Task.WaitAsync(ChatServer.Patience);
        await ada.SendAsync(""); // refused without the store: an error, which has no id
        _hook.Fail("third");
        await ada.SendAsync("third"); // refused by the store
        release.SetResult();

        // A client matches answers to its frames by order: the ack, then the two errors.
        List<string?> answers = [];
        while (answers.Count < 3)
        {
            System.Text.Json.JsonElement frame = await ada.ReceiveAsync();
            if (ChatClient.TypeOf(frame) is "ack" or "error")
            {
                answers.Add(ChatClient.TypeOf(frame));
            }
        }

        Assert.Equal(["ack", "error", "error"], answers);
    }

    [Fact]
    public async Task A_post_cancelled_before_its_batch_took_it_is_never_stored()
    {
        (Task<StoredMessage> first, TaskCompletionSource release) = await HoldFirstBatchAsync();

        using var cancellation = new CancellationTokenSource();
        Task<StoredMessage> withdrawn = Server.Service.PostAsync("lobby", "ada", "withdrawn", sender: null, cancellation.Token);
        await cancellation.CancelAsync();
        release.SetResult();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => withdrawn.WaitAsync(ChatServer.Patience));
        await first.WaitAsync(ChatServer.Patience);
        StoredMessage last = await Server.Service.PostAsync("lobby", "ada", "last", sender: null, CancellationToken.None);
        Assert.Equal(["first", "last"], (await Server.HistoryAsync("lobby")).Select(m => m.Text));
        Assert.False(_hook.WrittenIn.ContainsKey("withdrawn"));
        Assert.Equal((await first).Id + 1, last.Id);
    }

    private Task<(Task<StoredMessage> Post, TaskCompletionSource Release)> HoldFirstBatchAsync() => _hook.HoldBatchOfAsync(Server, "first");

    internal static async Task<List<string>> ReceiveTextsAsync(ChatClient client, int count)
    {
        var texts = new List<string>();
        while (texts.Count < count)
        {
            texts.Add((await client.ReceiveAsync("message")).GetProperty("text").GetString()!);
        }

        return texts;
    }
}

/// <summary>Many clients posting at once, some of whose messages fail, on one node.</summary>
public sealed class GroupCommitUnderLoadTests : ServiceTest
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Every_client_sees_exactly_the_acknowledged_messages_of_its_room_in_id_order(int seed)
    {
        var hook = new BatchHook();
        ChatServer server = await StartServerAsync(hook: hook, settings: ConcurrentPosts.Settings);
        await ConcurrentPosts.RunAsync([server], hook, seed);
    }
}
