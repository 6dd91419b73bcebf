using System.Net.WebSockets;
using AsyncScopes;
using AsyncScopes.Hosting;
using Chat.Realtime;
using Chat.Storage;
using Chat.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Chat.Tests;

public sealed class ShutdownTests : ServiceTest
{
    private const int Clients = 50;

    [Fact]
    public async Task Stopping_closes_every_client_with_1001_and_leaves_every_undelivered_job_in_the_outbox()
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;
        await using WebhookReceiver receiver = await WebhookReceiver.StartAsync();
        receiver.Respond = async (_, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct); // every delivery hangs until the service gives up on it
            return 200;
        };
        await Server.RegisterWebhookAsync("room0", receiver.Url);

        var clients = new List<ChatClient>();
        try
        {
            for (int i = 0; i < Clients; i++)
            {
                clients.Add(await ChatClient.ConnectAsync(Server.WebSocketUri($"room{i % 3}", $"client {i}")));
            }

            await Server.WaitForConnectionsAsync(count => count == Clients);
            for (int i = 0; i < 10; i++)
            {
                await Server.PostAsync("room0", "ada", $"pending {i}");
            }

            await receiver.NextRequestAsync(); // deliveries are running, and hanging

            // Stop; the shutdown timeout runs out only once every client has seen its close frame.
            using var shutdownTimeout = new CancellationTokenSource();
            Task stopping = Server.StopAsync(shutdownTimeout.Token);
            WebSocketCloseStatus?[] statuses = await Task.WhenAll(clients.Select(client => client.WaitClosedAsync()));
            Assert.All(statuses, status => Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, status));
            Assert.All(clients, client => Assert.Equal("The server is shutting down.", client.CloseReason));
            Assert.False(stopping.IsCompleted); // still draining the deliveries
            await shutdownTimeout.CancelAsync();
            await stopping.WaitAsync(ChatServer.Patience);

            Assert.Equal(0, Server.Service.Hub.Count);

            Assert.All(receiver.Outcomes, outcome => Assert.Null(outcome.Status)); // every one cut short

            // Disposing the host disposes the pools, which the container owns: every connection they opened is closed.
            await Server.DisposeAsync();
            foreach (AsyncScopes.PoolStatistics pool in new[] { Server.Service.Store.WriterStatistics, Server.Service.Store.ReaderStatistics })
            {
                Assert.Equal(0, pool.Size);
                Assert.Equal(pool.Created, pool.Destroyed);
                Assert.True(pool.Created > 0);
            }

            Assert.DoesNotContain(ScopeDiagnostics.OpenScopes, scope => scope.CreatedAt >= started);
        }
        finally
        {
            foreach (ChatClient client in clients)
            {
                await client.DisposeAsync();
            }
        }

        // Nothing was delivered and nothing was lost: all ten jobs are pending in the file, for the next start.
        Assert.Equal(new OutboxCounts(10, 0, 0), await DatabaseFile.OutboxAsync(Directory.Path));
    }

    [Fact]
    public async Task A_connection_asked_for_once_the_connections_are_stopping_is_refused_with_503()
    {
        await using ChatClient client = await Server.ConnectAsync("lobby", "ada");
        client.StopAnsweringClose(); // holds the stop in its closing phase

        // The host's first step of a stop, taken alone: the server still listens, as it does until the host stops it.
        var connections = Server.Services.GetRequiredKeyedService<HostedTaskScope>(RealtimeServices.Connections);
        await ((IHostedLifecycleService)connections).StoppingAsync(CancellationToken.None);
        await client.WaitClosedAsync();
        Assert.True(Server.Service.Hub.IsStopping);

        Assert.Equal(503, await ChatClient.RefusedAsync(Server.WebSocketUri("lobby", "bob")));
        client.Abort();
        await Server.StopAsync().WaitAsync(ChatServer.Patience);
    }

    [Fact]
    public async Task A_host_disposed_without_a_stop_disposes_the_dispatcher_while_the_store_still_works()
    {
        await Server.PostAsync("lobby", "ada", "the store was used");

        await Server.AbandonAsync();

        // The dispatcher gives up its claims through the writer's pool as it is disposed: had the container disposed
        // the pool first, that would fail, and say so.
        Assert.DoesNotContain(Server.Logs.Lines, line => line.Contains("could not be given up", StringComparison.Ordinal));
        Assert.DoesNotContain(Server.Logs.Lines, line => line.Contains("could not be read", StringComparison.Ordinal));
    }
}
