using System.Net.Http.Json;
using System.Net.WebSockets;
using Chat.Tests.Support;

namespace Chat.Tests;

public sealed class ProcessShutdownTests : IDisposable
{
    private const int SigInt = 2;
    private const int SigTerm = 15;
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(10);

    private readonly TempDirectory _directory = new();

    [Theory]
    [InlineData(SigTerm)]
    [InlineData(SigInt)]
    public async Task The_process_closes_every_client_with_1001_and_exits_0_within_its_shutdown_timeout(int signal)
    {
        await using ChatProcess service = await ChatProcess.StartAsync(_directory.Path, $"Chat:ShutdownTimeout={ShutdownTimeout}");
        Assert.Matches(@"Now listening on: http://127\.0\.0\.1:\d+", service.Output);

        var clients = new List<ChatClient>();
        try
        {
            for (int i = 0; i < 5; i++)
            {
                clients.Add(await ChatClient.ConnectAsync(service.WebSocketUri("lobby", $"client {i}")));
            }

            using var http = new HttpClient { BaseAddress = service.BaseAddress };
            using (HttpResponseMessage posted = await http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "before the signal" }))
            {
                Assert.Equal(System.Net.HttpStatusCode.Created, posted.StatusCode);
            }

            // Everyone has the message: the connections are all live.
            foreach (ChatClient client in clients)
            {
                await client.ReceiveAsync("message");
            }

            service.Signal(signal);
            WebSocketCloseStatus?[] statuses = await Task.WhenAll(clients.Select(client => client.WaitClosedAsync()));
            Assert.All(statuses, status => Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, status));
            Assert.Equal(0, await service.WaitForExitAsync(ShutdownTimeout));
        }
        finally
        {
            foreach (ChatClient client in clients)
            {
                await client.DisposeAsync();
            }
        }

        Assert.Equal(["before the signal"], await DatabaseFile.MessageTextsAsync(_directory.Path));
    }

    public void Dispose() => _directory.Dispose();
}
