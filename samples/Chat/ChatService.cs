using System.Data.Common;
using System.Diagnostics;
using AsyncScopes;
using Chat.Realtime;
using Chat.Security;
using Chat.Storage;
using Chat.Telemetry;
using Chat.Webhooks;
using Microsoft.Extensions.Options;

namespace Chat;

/// <summary>
/// Owns the store, and posts messages. Starting: the database opened (before the server listens), handed to the
/// webhook dispatcher. Stopping: once the server has finished its requests, the WebSockets' scope has closed every
/// connection (a hosted scope the host stops as it begins to stop, see <see cref="ConnectionHub"/>), and the dispatcher
/// (a hosted scope of its own) has drained its deliveries, the hub and the store closed, last opened first closed, by
/// one <see cref="AsyncExitStack"/>. The database's pools, the deliveries' queue, the connections' scope and the
/// dispatcher are the container's, which disposes them when the host is disposed.
/// </summary>
/// <remarks>It hears of every committed message, acknowledges this node's to their senders and broadcasts each to its
/// room's clients; on a database that other nodes share, also theirs, and their webhook jobs (<see cref="IDatabaseEvents"/>).</remarks>
internal sealed partial class ChatService : IHostedLifecycleService, IAsyncDisposable, IDatabaseEvents
{
    private readonly ChatOptions _options;
    private readonly DatabaseProvider _database;
    private readonly AsyncPool<DbConnection> _writer;
    private readonly AsyncPool<DbConnection> _readers;
    private readonly WebhookOptions _webhookOptions;
    private readonly TimeSpan _writerAcquireTimeout;
    private readonly TimeProvider _time;
    private readonly IMessageWriteHook? _hook;
    private readonly AdminKey _adminKey;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private AsyncExitStack? _resources;
    private ChatStore? _store;

    public ChatService(
        IOptions<ChatOptions> options,
        DatabaseProvider database,
        [FromKeyedServices(StorageServices.Writer)] AsyncPool<DbConnection> writer,
        [FromKeyedServices(StorageServices.Readers)] AsyncPool<DbConnection> readers,
        ConnectionHub hub,
        WebhookDispatcher dispatcher,
        IOptions<WebhookOptions> webhooks,
        IOptions<DatabaseOptions> databaseOptions,
        WebhookDestinations destinations,
        AdminKey adminKey,
        TimeProvider time,
        ILoggerFactory loggers,
        IEnumerable<IMessageWriteHook> hooks)
    {
        _options = options.Value;
        (_database, _writer, _readers, Webhooks) = (database, writer, readers, dispatcher);
        _webhookOptions = webhooks.Value;
        _writerAcquireTimeout = databaseOptions.Value.WriterAcquireTimeout;
        Destinations = destinations;
        _adminKey = adminKey;
        _time = time;
        _hook = hooks.LastOrDefault();
        _loggers = loggers;
        _logger = loggers.CreateLogger<ChatService>();
        Hub = hub;
    }

    public ChatOptions Options => _options;

    public WebhookOptions WebhookOptions => _webhookOptions;

    public TimeProvider Time => _time;

    public ConnectionHub Hub { get; }

    /// <summary>Where webhooks may be sent.</summary>
    public WebhookDestinations Destinations { get; }

    public ChatStore Store => _store ?? throw NotStarted();

    /// <summary>The webhook dispatcher, a hosted scope of its own that this service hands the store as it opens it.</summary>
    public WebhookDispatcher Webhooks { get; }

    /// <summary>Opens the database before the server starts listening, so that no request finds it missing.</summary>
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        await using var stack = new AsyncExitStack();
        ChatStore store = stack.Push(await ChatStore.OpenAsync(
            _database, _writer, _readers, _time, _hook, this, WebhookPayload.Write, _writerAcquireTimeout, _loggers, cancellationToken)
            .ConfigureAwait(false));
        await _adminKey.LoadAsync(store, cancellationToken).ConfigureAwait(false);
        stack.Push(Hub); // a host disposed without a stop: the connections end before the store closes

        // Kept past this block; had anything above thrown, the stack would have closed what was opened.
        _resources = stack.PopAll();
        stack.Complete();
        _store = store;
        Webhooks.UseStore(store); // the host starts the dispatcher after every StartingAsync
        LogStarted(_logger, store.Description, store.NodeId);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Nothing: the connections' scope closes the WebSockets as the host begins to stop.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Nothing: the dispatcher drains the deliveries in its own stop.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Closes the hub and the store, once the server has finished its requests.</summary>
    public async Task StoppedAsync(CancellationToken cancellationToken) => await CloseAsync(completed: true).ConfigureAwait(false);

    /// <summary>Closes what a start opened, if the host never stopped the service.</summary>
    public ValueTask DisposeAsync() => CloseAsync(completed: false);

    /// <summary>
    /// Stores a message in the writer's next batch (<see cref="MessageWriter"/>). Once it is committed, and in id order
    /// with every other message, it is acknowledged to its sender and broadcast to its room
    /// (<see cref="IDatabaseEvents.MessageCommitted"/>): every client sees the messages of a room in id order, and only
    /// committed ones.
    /// </summary>
    /// <param name="cancellationToken">Withdraws the message while no batch has taken it yet; once one has, the post
    /// ends with its batch.</param>
    /// <exception cref="Exception">What the database threw (logged here): nothing was stored.</exception>
    public async Task<StoredMessage> PostAsync(
        string room, string name, string text, ChatConnection? sender, CancellationToken cancellationToken)
    {
        using Activity? commit = ChatTelemetry.Source.StartActivity("chat.commit");
        commit?.SetTag(ChatTelemetry.RoomTag, room);
        var posted = new PostedMessage(room, name, text, sender is null ? null : stored => sender.TryPost(Frames.Ack(stored.Id)), commit);
        if (sender is not null)
        {
            sender.LastAnswer = posted.HandedOn;
        }

        try
        {
            StoredMessage message;
            using (cancellationToken.UnsafeRegister(static (state, token) => ((PostedMessage)state!).TryWithdraw(token), posted))
            {
                message = await Store.AppendMessageAsync(posted).ConfigureAwait(false);
            }

            commit?.SetTag(ChatTelemetry.MessageIdTag, message.Id);
            return message;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            commit?.SetStatus(ActivityStatusCode.Error, "not stored");
            LogNotStored(_logger, e, room);
            throw;
        }
    }

    /// <summary>
    /// The one way a committed message reaches this node's clients: acknowledged to its sender, when this node's, then
    /// broadcast to its room. The message is stored: from here nothing may reach the sender as "not stored", which
    /// would make it send the message again. A failure is logged, and the sender still gets its ack.
    /// </summary>
    void IDatabaseEvents.MessageCommitted(StoredMessage message, PostedMessage? posted)
    {
        bool acked = posted?.Acknowledge is null;
        try
        {
            // Runs on the feed's loop: the commit, when traced, is named as the parent.
            using Activity? broadcast = posted is null || posted.Commit == default
                ? null
                : ChatTelemetry.Source.StartActivity("chat.broadcast", ActivityKind.Internal, posted.Commit);
            if (!acked)
            {
                posted!.Acknowledge!(message);
                acked = true;
            }

            int recipients = Hub.Broadcast(message.Room, Frames.Message(message));
            broadcast?.SetTag(ChatTelemetry.RoomTag, message.Room).SetTag(ChatTelemetry.MessageIdTag, message.Id).SetTag(ChatTelemetry.RecipientsTag, recipients);
        }
        catch (Exception e)
        {
            LogNotBroadcast(_logger, e, message.Room, message.Id);
            if (!acked)
            {
                posted!.Acknowledge!(message);
            }
        }
    }

    /// <summary>Lets the dispatcher look for due jobs: this node's last batch wrote some, or another node wrote or released some.</summary>
    void IDatabaseEvents.JobsAvailable() => Webhooks.Wake();

    /// <summary>Posts a WebSocket client's message; a failure goes back to that client as an error frame, after the
    /// ack of its previous message (<see cref="ChatConnection.PostErrorAsync"/>).</summary>
    public async Task PostFromSocketAsync(ChatConnection sender, string text, CancellationToken cancellationToken)
    {
        Task previous = sender.LastAnswer;
        try
        {
            await PostAsync(sender.Room, sender.Name, text, sender, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            // Not stored: the error's turn comes after the previous message's ack, and so does the next answer's.
            sender.LastAnswer = previous;
            await sender.PostErrorAsync(Frames.Error(NotStoredMessage(e)), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>What a client is told when its message was not stored.</summary>
    public static string NotStoredMessage(Exception exception) => exception is TimeoutException
        ? "The message was not stored: the database is busy. Send it again."
        : "The message was not stored: the database failed. Send it again.";

    private async ValueTask CloseAsync(bool completed)
    {
        AsyncExitStack? resources = Interlocked.Exchange(ref _resources, null);
        if (resources is not null)
        {
            if (completed)
            {
                resources.Complete();
            }

            await resources.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static InvalidOperationException NotStarted() => new("The chat service has not started.");

    [LoggerMessage(Level = LogLevel.Information, Message = "Chat database: {Database}; this node is {Node}.")]
    private static partial void LogStarted(ILogger logger, string database, string node);

    [LoggerMessage(Level = LogLevel.Error, Message = "Message {Id} to {Room} was committed, but not broadcast to every client.")]
    private static partial void LogNotBroadcast(ILogger logger, Exception exception, string room, long id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A message to {Room} was not stored.")]
    private static partial void LogNotStored(ILogger logger, Exception exception, string room);
}
