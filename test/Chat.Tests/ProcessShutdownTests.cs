using System.Net.Http.Json;
using System.Net.WebSockets;
using Chat.Tests.Support;

namespace Chat.Tests;

public sealed class ProcessShutdownTests : IDisposable
{
    private const int SigInt = 2;
    private const int SigTerm = 15;
    private const int SigKill = 9;
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

    [Fact]
    public async Task A_process_killed_while_it_commits_batches_lost_no_acknowledged_message_and_stored_none_twice()
    {
        const int Clients = 4;
        const int MessagesEach = 100;
        const int AcksBeforeTheKill = 60;
        await using ChatProcess service = await ChatProcess.StartAsync(_directory.Path, ConcurrentPosts.Settings);
        var clients = new List<ChatClient>();
        try
        {
            for (int i = 0; i < Clients; i++)
            {
                clients.Add(await ChatClient.ConnectAsync(service.WebSocketUri("lobby", $"client{i}")));
            }

            string[][] texts = [.. Enumerable.Range(0, Clients).Select(i => Enumerable.Range(0, MessagesEach).Select(j => $"{i}:{j}").ToArray())];
            var acked = new List<string>[Clients];
            int acks = 0;
            var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task[] clientsRunning = [.. Enumerable.Range(0, Clients).Select(async i =>
            {
                // As a client would: the answers come in the order of its messages, and one not stored is sent again.
                acked[i] = [];
                var unanswered = new Queue<string>(texts[i]);
                try
                {
                    foreach (string text in texts[i])
                    {
                        await clients[i].SendAsync(text);
                    }

                    while (true)
                    {
                        System.Text.Json.JsonElement frame = await clients[i].ReceiveAsync();
                        string? type = ChatClient.TypeOf(frame);
                        if (type == "ack")
                        {
                            acked[i].Add(unanswered.Dequeue());
                            if (Interlocked.Increment(ref acks) >= AcksBeforeTheKill)
                            {
                                enough.TrySetResult();
                            }
                        }
                        else if (type == "error")
                        {
                            string again = unanswered.Dequeue();
                            unanswered.Enqueue(again);
                            await clients[i].SendAsync(again);
                        }
                    }
                }
                catch (Exception e) when (e is System.Threading.Channels.ChannelClosedException or WebSocketException or ObjectDisposedException)
                {
                    // The connection ended: the process is gone.
                }
            })];

            await enough.Task.WaitAsync(ChatServer.Patience);
            service.Signal(SigKill);
            await service.WaitForExitAsync(ShutdownTimeout);
            await Task.WhenAll(clientsRunning).WaitAsync(ChatServer.Patience);

            List<string> stored = await DatabaseFile.MessageTextsAsync(_directory.Path);
            Assert.Equal(stored.Distinct(), stored);
            Assert.Subset(texts.SelectMany(t => t).ToHashSet(), stored.ToHashSet());
            Assert.Subset(stored.ToHashSet(), acked.SelectMany(a => a).ToHashSet());
            Assert.True(acks >= AcksBeforeTheKill);
        }
        finally
        {
            foreach (ChatClient client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    public void Dispose() => _directory.Dispose();
}
