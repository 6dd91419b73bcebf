using System.Net;
using AsyncScopes;
using Chat.Tests.Support;

namespace Chat.Tests.Api;

/// <summary><c>GET /debug/scopes</c>: the live scope tree, for operators.</summary>
[Collection(LeakTrackingCollectionDefinition.Name)]
public sealed class DebugEndpointTests : ServiceTest
{
    public override Task InitializeAsync() => Task.CompletedTask; // each test starts its own server

    [Fact]
    public async Task The_scope_tree_shows_each_connection_under_the_hub()
    {
        ScopeDiagnostics.LeakTracking = true; // before the server exists: its scopes are recorded from the start
        try
        {
            ChatServer server = await StartServerAsync(settings: "Chat:EnableDebugEndpoints=true");
            await using ChatClient client = await server.ConnectAsync("lobby", "ada");

            string tree = await server.Http.GetStringAsync(new Uri("/debug/scopes", UriKind.Relative));

            var lines = tree.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.TrimEnd('\r')).ToList();
            int hub = lines.FindIndex(line => line.StartsWith("TaskScope 'chat connections', created ", StringComparison.Ordinal));
            Assert.True(hub >= 0, tree);
            Assert.Contains(lines.Skip(hub + 1).TakeWhile(line => line.StartsWith(' ')), line => line.StartsWith("  TaskScope 'chat connection', created ", StringComparison.Ordinal));
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = false;
        }
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

/// <summary>Alone: leak tracking is global to the process.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LeakTrackingCollectionDefinition
{
    public const string Name = "LeakTracking";
}
