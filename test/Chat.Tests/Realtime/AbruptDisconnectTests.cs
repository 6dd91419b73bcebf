using AsyncScopes;
using Chat.Api;
using Chat.Tests.Support;

namespace Chat.Tests.Realtime;

public sealed class AbruptDisconnectTests : ServiceTest
{
    private const int Clients = 200;

    [Fact]
    public async Task Two_hundred_clients_dropped_without_a_close_frame_leave_no_connection_scope_or_task_behind()
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;
        using var children = new RunningChildren();
        var clients = new List<ChatClient>();
        try
        {
            // Connected twenty at a time, in five rooms.
            for (int batch = 0; batch < Clients / 20; batch++)
            {
                clients.AddRange(await Task.WhenAll(Enumerable.Range(batch * 20, 20).Select(i =>
                    ChatClient.ConnectAsync(Server.WebSocketUri($"room{i % 5}", $"client {i}")))));
            }

            // Each connection is a child of the hub running three children of its own, in a scope that leak
            // tracking lists.
            await Server.WaitForConnectionsAsync(count => count == Clients);
            await children.WaitForAsync(Clients * 4);
            Assert.Equal(Clients, OpenConnectionScopes(started).Count);

            // Half dropped as a vanished process does (no close frame), half reset (TCP RST), in a random order.
            var random = new Random(20261201);
            foreach (ChatClient client in clients.OrderBy(_ => random.Next()))
            {
                if (random.Next(2) == 0)
                {
                    client.Abort();
                }
                else
                {
                    client.Reset();
                }
            }

            await Server.WaitForConnectionsAsync(count => count == 0, within: Server.Service.Options.HeartbeatInterval);
            await children.WaitForAsync(0);
            Assert.Empty(OpenConnectionScopes(started));

            HealthDetails? health = await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync(
                Server.Http, "/health/details", ChatJson.Default.HealthDetails);
            Assert.Equal(0, health!.Connections);
            Assert.Empty(Server.Service.Hub.Rooms());
        }
        finally
        {
            foreach (ChatClient client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    private static List<OpenScopeInfo> OpenConnectionScopes(DateTimeOffset since) =>
        ScopeDiagnostics.OpenScopes.Where(scope => scope.Name == "chat connection" && scope.CreatedAt >= since).ToList();
}
