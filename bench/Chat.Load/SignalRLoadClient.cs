using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace Chat.Load;

/// <summary>
/// One client of the SignalR baseline, through SignalR's own client over WebSockets: a message is an invocation of
/// the hub's <c>Send</c>, whose result is the ack; the broadcast arrives as <c>message</c>.
/// </summary>
internal sealed class SignalRLoadClient : ILoadClient
{
    private readonly HubConnection _connection;
    private readonly Deliveries _deliveries;

    private SignalRLoadClient(HubConnection connection, int expectedLatencies)
    {
        _connection = connection;
        _deliveries = new Deliveries(expectedLatencies);

        // SignalR runs one connection's handlers one at a time, in order.
        _connection.On<ChatMessage>("message", message => _deliveries.Received(message.Text));
        _connection.Closed += error =>
        {
            _deliveries.Failed($"The hub closed a client: {error?.Message}");
            return Task.CompletedTask;
        };
    }

    public List<long> Latencies => _deliveries.Latencies;

    public static async Task<SignalRLoadClient> ConnectAsync(Uri uri, int expectedLatencies, CancellationToken cancellationToken)
    {
        HubConnection connection = new HubConnectionBuilder()
            .WithUrl(uri, options =>
            {
                options.SkipNegotiation = true;
                options.Transports = HttpTransportType.WebSockets;
            })
            .Build();
        var client = new SignalRLoadClient(connection, expectedLatencies);
        try
        {
            await connection.StartAsync(cancellationToken);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    public Task ExpectAsync(long count) => _deliveries.ExpectAsync(count);

    public void Restart() => _deliveries.Restart();

    public async Task SendAsync(int count, int inFlight, CancellationToken cancellationToken)
    {
        var pending = new Queue<Task<long>>(inFlight);
        for (int i = 0; i < count; i++)
        {
            if (pending.Count == inFlight)
            {
                await pending.Dequeue(); // acks come back in order: one connection, one hub at a time
            }

            pending.Enqueue(_connection.InvokeAsync<long>("Send", ILoadClient.NewText(), cancellationToken));
        }

        while (pending.TryDequeue(out Task<long>? ack))
        {
            await ack;
        }
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();

    /// <summary>The hub's broadcast, as SignalR's JSON protocol carries it.</summary>
    private sealed record ChatMessage(long Id, string Room, string Name, string Text, DateTimeOffset At);
}
