using System.Net;
using Chat.Tests.Support;

namespace Chat.Tests.Postgres;

/// <summary>On PostgreSQL the service starts only once it listens for every node's messages: its listener is started
/// with <c>TaskScope.StartAsync</c>, which returns when the listener says it is ready.</summary>
public sealed class ListenerStartTests : PostgresServiceTest
{
    // The listening connection's application name (PostgresProvider: the connection string's, then " listener").
    private const string Listener = "chat listener";

    private protected override bool StartsServer => false;

    [Fact]
    public async Task The_service_is_not_started_before_its_listener_listens()
    {
        await using var relay = new PostgresRelay(Database.ConnectionString, Listener);
        Task<ChatServer> starting = StartServerAsync(settings: Settings(relay));

        // The database is open and its schema made; the listener's connection waits for the server's answer.
        await relay.Held.WaitAsync(ChatServer.Patience);
        Assert.False(starting.IsCompleted);

        relay.Release();
        ChatServer server = await starting.WaitAsync(ChatServer.Patience);
        string[] lines = [.. server.Logs.Lines];
        int listening = Array.FindIndex(lines, line => line.Contains("Listening to the database for every node's messages", StringComparison.Ordinal));
        int started = Array.FindIndex(lines, line => line.Contains("Chat database:", StringComparison.Ordinal));
        Assert.InRange(listening, 0, started - 1); // ready first, then started
        using HttpResponseMessage health = await server.Http.GetAsync(new Uri("/health", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task A_start_cancelled_while_the_listener_connects_ends_cancelled_and_the_next_start_works()
    {
        await using var relay = new PostgresRelay(Database.ConnectionString, Listener);
        using var cancel = new CancellationTokenSource();
        Task<ChatServer> starting = ChatServer.StartAsync(Directory.Path, null, null, [.. DatabaseSettings, .. Settings(relay)], cancel.Token);
        await relay.Held.WaitAsync(ChatServer.Patience);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting.WaitAsync(ChatServer.Patience));
        relay.Release();
        ChatServer server = await StartServerAsync(settings: Settings(relay));
        Assert.Equal(1, (await server.PostAsync("lobby", "ada", "after a cancelled start")).Id);
    }

    private static string[] Settings(PostgresRelay relay) =>
    [
        $"Database:ConnectionString={relay.ConnectionString}",
        "Logging:LogLevel:Chat.Storage.PostgresMessageFeed=Information",
        "Logging:LogLevel:Chat.ChatService=Information",
    ];
}
