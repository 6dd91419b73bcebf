using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using Chat.Load;

// Load for the chat service: N clients in R rooms send M messages, then C connect/abort cycles. Prints messages
// delivered per second, end-to-end latency and the service's memory before and after the cycles.
//
//   dotnet run -c Release --project bench/Chat.Load -- --clients 500 --rooms 10 --messages 10000 --cycles 10000
LoadOptions options = LoadOptions.Parse(args);
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

// The load sends as fast as acks come back: far beyond a person's budget of frames, which is raised for it.
await using ServiceProcess service = await ServiceProcess.StartAsync(
[
    "Chat:EnableDebugEndpoints=true",
    "Chat:ReceiveBurst=1000000",
    "Chat:ReceiveFramesPerSecond=1000000",
    "Logging:LogLevel:Default=Warning",
    "Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
]);
Console.WriteLine($"Service at {service.BaseAddress}; {Environment.ProcessorCount} cores; {options}");
using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));

// 1. Throughput and latency.
var clients = new LoadClient[options.Clients];
int[] roomSizes = new int[options.Rooms];
for (int i = 0; i < clients.Length; i++)
{
    roomSizes[i % options.Rooms]++;
}

// Client i sends its share; the messages of a room reach every client of the room, the sender included.
int[] shares = Enumerable.Range(0, options.Clients).Select(i => options.Messages / options.Clients + (i < options.Messages % options.Clients ? 1 : 0)).ToArray();
long[] roomMessages = new long[options.Rooms];
for (int i = 0; i < clients.Length; i++)
{
    roomMessages[i % options.Rooms] += shares[i];
}

await Parallel.ForAsync(0, clients.Length, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = timeout.Token }, async (i, ct) =>
    clients[i] = await LoadClient.ConnectAsync(service.WebSocketUri($"room{i % options.Rooms}", $"load {i}"), (int)roomMessages[i % options.Rooms], ct));
Console.WriteLine($"Connected {clients.Length} clients in {options.Rooms} rooms.");

long started = Stopwatch.GetTimestamp();
Task[] received = clients.Select((client, i) => client.ExpectAsync(roomMessages[i % options.Rooms])).ToArray();
await Task.WhenAll(clients.Select((client, i) => client.SendAsync(shares[i], timeout.Token)));
await Task.WhenAll(received).WaitAsync(timeout.Token);
TimeSpan elapsed = Stopwatch.GetElapsedTime(started);

long[] latencies = clients.SelectMany(client => client.Latencies).Order().ToArray();
long deliveries = latencies.Length;
double Percentile(double p) => latencies[(int)Math.Min(latencies.Length - 1, Math.Ceiling(p * latencies.Length) - 1)] * 1000.0 / Stopwatch.Frequency;
foreach (LoadClient client in clients)
{
    await client.DisposeAsync();
}

// 2. Memory across connect/abort cycles.
await WaitForNoConnectionsAsync();
var before = await service.CollectAsync();
long cyclesStarted = Stopwatch.GetTimestamp();
await Parallel.ForAsync(0, options.Cycles, new ParallelOptions { MaxDegreeOfParallelism = options.CycleConcurrency, CancellationToken = timeout.Token }, async (i, ct) =>
{
    using var socket = new ClientWebSocket();
    await socket.ConnectAsync(service.WebSocketUri($"room{i % options.Rooms}", $"cycle {i}"), ct);
    socket.Abort();
});
TimeSpan cycling = Stopwatch.GetElapsedTime(cyclesStarted);
await WaitForNoConnectionsAsync();
var after = await service.CollectAsync();

static string Megabytes(long bytes) => $"{bytes / 1024.0 / 1024.0:0.0} MB";
Console.WriteLine();
Console.WriteLine("| measure | value |");
Console.WriteLine("|---|---:|");
Console.WriteLine($"| clients / rooms / messages sent | {options.Clients} / {options.Rooms} / {options.Messages} |");
Console.WriteLine($"| messages delivered (each to every client of its room) | {deliveries} |");
Console.WriteLine($"| time from first send to last delivery | {elapsed.TotalSeconds:0.00} s |");
Console.WriteLine($"| delivered messages per second | {deliveries / elapsed.TotalSeconds:0} |");
Console.WriteLine($"| end-to-end latency p50 / p99 / max | {Percentile(0.50):0.0} ms / {Percentile(0.99):0.0} ms / {Percentile(1.0):0.0} ms |");
Console.WriteLine($"| connect/abort cycles | {options.Cycles} in {cycling.TotalSeconds:0.0} s, {options.CycleConcurrency} at a time |");
Console.WriteLine($"| working set after a full GC, before / after the cycles | {Megabytes(before.WorkingSet)} / {Megabytes(after.WorkingSet)} |");
Console.WriteLine($"| working-set growth | {Megabytes(after.WorkingSet - before.WorkingSet)} |");
Console.WriteLine($"| managed heap after a full GC, before / after the cycles | {Megabytes(before.ManagedHeap)} / {Megabytes(after.ManagedHeap)} |");
Console.WriteLine($"| connections open after the cycles | {after.Connections} |");

async Task WaitForNoConnectionsAsync()
{
    // A benchmark, not a test: polling the service's count is the simplest honest wait here.
    while (await service.ConnectionsAsync() > 0)
    {
        timeout.Token.ThrowIfCancellationRequested();
        await Task.Delay(100, timeout.Token);
    }
}
