using System.Net.Http.Json;
using Chat.Api;
using Chat.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Chat.Tests.Support;

/// <summary>
/// The real service on Kestrel, bound to a free port of 127.0.0.1, with its SQLite file in a folder of the test's (or,
/// with the settings of <see cref="PostgresDatabase"/>, on a PostgreSQL database of its own).
/// </summary>
internal sealed class ChatServer : IAsyncDisposable
{
    /// <summary>How long a test waits for something the service does at once; only a broken service takes this long.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>The setting every test server starts with, so that webhooks may go to the tests' receivers on
    /// 127.0.0.1 (the service's own endpoint stays refused).</summary>
    public const string LoopbackReceivers = "Webhooks:AllowedNetworks:0=127.0.0.1/32";

    /// <summary>A setting that replaces <see cref="LoopbackReceivers"/> with a network no test uses: loopback is
    /// refused, as it is by default.</summary>
    public const string NoLoopbackReceivers = "Webhooks:AllowedNetworks:0=192.0.2.0/24";

    /// <summary>The admin API key of every test server; <see cref="Http"/> sends it.</summary>
    public const string AdminApiKey = "test-admin-key-not-a-secret";

    private readonly WebApplication _app;
    private bool _stopped;
    private int _disposed;

    private ChatServer(WebApplication app, string directory, ObservedTimeProvider time, LogRecorder logs)
    {
        _app = app;
        Logs = logs;
        Directory = directory;
        Time = time;
        Service = app.Services.GetRequiredService<ChatService>();
        BaseAddress = new Uri(app.Urls.Single());
        Http = new HttpClient { BaseAddress = BaseAddress };
        Http.DefaultRequestHeaders.Authorization = new("Bearer", AdminApiKey);
    }

    public string Directory { get; }

    public ObservedTimeProvider Time { get; }

    /// <summary>What the service logged, as an operator's log would hold it.</summary>
    public LogRecorder Logs { get; }

    public ChatService Service { get; }

    /// <summary>The service's container.</summary>
    public IServiceProvider Services => _app.Services;

    public Uri BaseAddress { get; }

    public HttpClient Http { get; }

    /// <summary>Starts the service on the database in <paramref name="directory"/>.</summary>
    /// <param name="directory">The folder of <c>chat.db</c>; a second server on the same folder finds the first one's data.</param>
    /// <param name="time">The service's clock; a new fake clock at the current time when null.</param>
    /// <param name="hook">Runs inside every message's transaction, before the commit.</param>
    /// <param name="settings">Settings as <c>Section:Key=value</c>, over the test defaults.</param>
    public static Task<ChatServer> StartAsync(
        string directory, ObservedTimeProvider? time = null, IMessageWriteHook? hook = null, params string[] settings) =>
        StartAsync(directory, time, hook, settings, CancellationToken.None);

    /// <summary>Starts the service on the database in <paramref name="directory"/>, as the host would with a start
    /// that <paramref name="cancellationToken"/> cancels.</summary>
    public static async Task<ChatServer> StartAsync(
        string directory, ObservedTimeProvider? time, IMessageWriteHook? hook, string[] settings, CancellationToken cancellationToken)
    {
        time ??= new ObservedTimeProvider();
        string[] args =
        [
            "--urls=http://127.0.0.1:0",
            $"--Database:Path={Path.Combine(directory, "chat.db")}",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Chat.Realtime.ConnectionHub=Error",
            "--Webhooks:BackoffBase=00:00:00",
            "--Webhooks:BackoffJitter=0",
            "--Chat:WriteBurst=1000000", // the tests post as fast as they can, from one address
            "--Chat:WritesPerSecond=1000000",
            $"--{LoopbackReceivers}",
            $"--Security:AdminApiKey={AdminApiKey}",
            .. settings.Select(setting => "--" + setting),
        ];
        var logs = new LogRecorder();
        WebApplication app = ChatApp.Build(args, builder =>
        {
            builder.Logging.AddProvider(logs);
            builder.Services.AddSingleton<TimeProvider>(time);
            if (hook is not null)
            {
                builder.Services.AddSingleton(hook);
            }
        });
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return new ChatServer(app, directory, time, logs);
    }

    public Uri WebSocketUri(string room, string name) =>
        new UriBuilder(BaseAddress) { Scheme = "ws", Path = $"/ws/rooms/{Uri.EscapeDataString(room)}", Query = $"name={Uri.EscapeDataString(name)}" }.Uri;

    /// <summary>Connects a client and waits until the service has it in its room.</summary>
    public async Task<ChatClient> ConnectAsync(
        string room, string name, bool answerPings = true, IReadOnlyDictionary<string, string>? headers = null)
    {
        Task changed = Service.Hub.Changed;
        HashSet<global::Chat.Realtime.ChatConnection> before = [.. Service.Hub.Members(room)];
        ChatClient client = await ChatClient.ConnectAsync(WebSocketUri(room, name), answerPings, headers: headers);
        await WaitForConnectionsAsync(
            _ => Service.Hub.Members(room).Any(member => member.Name == name && !before.Contains(member)), changed);
        return client;
    }

    /// <summary>Waits until the service's count of open connections satisfies <paramref name="condition"/>.</summary>
    public Task WaitForConnectionsAsync(Func<int, bool> condition, TimeSpan? within = null) =>
        WaitForConnectionsAsync(condition, Service.Hub.Changed, within);

    public async Task<StoredMessage> PostAsync(string room, string name, string text)
    {
        using HttpResponseMessage response = await Http.PostAsJsonAsync($"/api/rooms/{room}/messages", new { name, text });
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(ChatJson.Default.StoredMessage))!;
    }

    public async Task<IReadOnlyList<StoredMessage>> HistoryAsync(string room, int limit = 200, long? before = null)
    {
        string query = before is null ? $"limit={limit}" : $"limit={limit}&before={before}";
        MessagePage? page = await Http.GetFromJsonAsync($"/api/rooms/{room}/messages?{query}", ChatJson.Default.MessagePage);
        return page!.Messages;
    }

    public async Task<WebhookRegistration> RegisterWebhookAsync(string room, Uri url)
    {
        using HttpResponseMessage response = await Http.PostAsJsonAsync("/api/webhooks", new { room, url = url.AbsoluteUri });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync(ChatJson.Default.WebhookRegistration))!;
    }

    public Task<OutboxCounts> OutboxAsync() => Service.Store.GetOutboxCountsAsync(CancellationToken.None);

    /// <summary>Waits until the outbox satisfies <paramref name="condition"/>, checking after each recorded attempt.</summary>
    public async Task<OutboxCounts> WaitForOutboxAsync(Func<OutboxCounts, bool> condition)
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (true)
        {
            Task recorded = Service.Webhooks.Recorded;
            OutboxCounts counts = await OutboxAsync();
            if (condition(counts))
            {
                return counts;
            }

            await recorded.WaitAsync(timeout.Token);
        }
    }

    /// <summary>Stops the host as Ctrl+C would; <paramref name="cancellationToken"/> plays the shutdown timeout.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        _stopped = true;
        await _app.StopAsync(cancellationToken);
    }

    /// <summary>Disposes the host without stopping it, as a host whose start failed after its services started is.</summary>
    public async Task AbandonAsync()
    {
        _stopped = true;
        await DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_stopped)
        {
            await StopAsync();
        }

        Http.Dispose();
        await _app.DisposeAsync();
    }

    private async Task WaitForConnectionsAsync(Func<int, bool> condition, Task changed, TimeSpan? within = null)
    {
        using var timeout = new CancellationTokenSource(within ?? Patience);
        while (!condition(Service.Hub.Count))
        {
            await changed.WaitAsync(timeout.Token);
            changed = Service.Hub.Changed;
        }
    }
}
