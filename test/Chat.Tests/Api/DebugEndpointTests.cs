using System.Net;
using Chat.Tests.Support;

namespace Chat.Tests.Api;

/// <summary><c>GET /debug/scopes</c>: the live scope tree, for operators.</summary>
public sealed class DebugEndpointTests : ServiceTest
{
    public override Task InitializeAsync() => Task.CompletedTask; // each test starts its own server

    [Fact]
    public async Task The_scope_tree_shows_each_connection_under_the_hub()
    {
        // Leak tracking, which records the tree, is on for the whole test run (AssemblySetup).
        ChatServer server = await StartServerAsync(settings: "Chat:EnableDebugEndpoints=true");
        await using ChatClient client = await server.ConnectAsync("lobby", "ada");

        string tree = await server.Http.GetStringAsync(new Uri("/debug/scopes", UriKind.Relative));

        // Other tests' servers run in this process too: every connection, theirs as well, must sit right under a hub.
        string? root = null;
        var connections = new List<(string Line, string? Root)>();
        foreach (string line in tree.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.TrimEnd('\r')))
        {
            if (!line.StartsWith(' '))
            {
                root = line;
            }

            if (line.Contains("TaskScope 'chat connection', created ", StringComparison.Ordinal))
            {
                connections.Add((line, root));
            }
        }

        Assert.NotEmpty(connections); // ours, at least
        Assert.All(connections, connection =>
        {
            Assert.StartsWith("  TaskScope 'chat connection', created ", connection.Line, StringComparison.Ordinal);
            Assert.StartsWith("TaskScope 'chat-connections', created ", connection.Root, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task A_flood_of_tree_requests_gets_429()
    {
        ChatServer server = await StartServerAsync(settings: ["Chat:EnableDebugEndpoints=true", "Chat:WriteBurst=2", "Chat:WritesPerSecond=0.001"]);

        var statuses = new List<HttpStatusCode>();
        for (int i = 0; i < 3; i++)
        {
            using HttpResponseMessage response = await server.Http.GetAsync(new Uri("/debug/scopes", UriKind.Relative));
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task It_needs_the_admin_key_and_the_debug_setting()
    {
        ChatServer withDebug = await StartServerAsync(settings: "Chat:EnableDebugEndpoints=true");
        using var anonymous = new HttpClient { BaseAddress = withDebug.BaseAddress };
        using (HttpResponseMessage refused = await anonymous.GetAsync(new Uri("/debug/scopes", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        await withDebug.StopAsync();

        ChatServer without = await StartServerAsync();
        using HttpResponseMessage missing = await without.Http.GetAsync(new Uri("/debug/scopes", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }
}
