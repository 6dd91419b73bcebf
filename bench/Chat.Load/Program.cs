using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using Chat.Load;

// Load for the chat service and its in-memory baselines: N clients in R rooms send M messages, each with at most K
// waiting for their acks; every message goes to every client of its room. Prints, per server, messages delivered per
// second, end-to-end latency, messages lost, the server's CPU time per delivery and its peak resident memory; then,
// for the service, C connect/abort cycles and its memory before and after them.
//
//   dotnet run -c Release --project bench/Chat.Load -- --targets service,raw,signalr --clients 500 --rooms 10 --each 20 --in-flight 4
//   dotnet run -c Release --project bench/Chat.Load -- --targets raw,service --clients 200 --rooms 10 --each 50 --in-flight 4 --warmup 10
//   dotnet run -c Release --project bench/Chat.Load -- --clients 500 --rooms 10 --messages 10000 --cycles 10000
LoadOptions options = LoadOptions.Parse(args);
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
Console.WriteLine($"{Environment.ProcessorCount} cores; {options}");

var rows = new List<LoadResult>();
foreach (string target in options.Targets)
{
    rows.Add(await RunAsync(target));
}

Console.WriteLine();
LoadResult.WriteTable(rows, Console.Out);
return;

async Task<LoadResult> RunAsync(string target)
{
    // The load sends as fast as acks come back: far beyond a person's budget of frames, which is raised for it.
    List<string> settings =
    [
        "Chat:EnableDebugEndpoints=true",
        "Chat:ReceiveBurst=1000000",
        "Chat:ReceiveFramesPerSecond=1000000",
        "Logging:LogLevel:Default=Warning",
        "Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
    ];
    await using PostgresDatabase? database = target == "service" && options.Postgres is { } postgres
        ? await PostgresDatabase.CreateAsync(postgres)
        : null;
    if (database is not null)
    {
        settings.AddRange(["Database:Provider=Postgres", $"Database:ConnectionString={database.ConnectionString}"]);
    }

    await using var servers = new ServerGroup();
    for (int node = 0; node < (database is null ? 1 : options.Nodes); node++)
    {
        ServerProcess process = await servers.StartAsync(target, settings);
        Console.WriteLine($"{target} at {process.BaseAddress} (process {process.ProcessId})");
    }

    ServerProcess server = servers[0];
    using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));

    // Client i sends its share; the messages of a room reach every client of the room, the sender included.
    int[] shares = Enumerable.Range(0, options.Clients).Select(i => options.Messages / options.Clients + (i < options.Messages % options.Clients ? 1 : 0)).ToArray();
    long[] roomMessages = new long[options.Rooms];
    for (int i = 0; i < options.Clients; i++)
    {
        roomMessages[i % options.Rooms] += shares[i];
    }

    // The clients of client i's room (client j is in room j % rooms).
    long RoomClients(int i) => Enumerable.Range(0, options.Clients).Count(j => j % options.Rooms == i % options.Rooms);

    var clients = new ILoadClient[options.Clients];
    await Parallel.ForAsync(0, clients.Length, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = timeout.Token }, async (i, ct) =>
    {
        Uri uri = servers[i % servers.Count].ClientUri($"room{i % options.Rooms}", $"load {i}");
        int expected = (int)roomMessages[i % options.Rooms];
        clients[i] = target == "signalr"
            ? await SignalRLoadClient.ConnectAsync(uri, expected, ct)
            : await WebSocketLoadClient.ConnectAsync(uri, expected, ct);
    });
    Console.WriteLine($"Connected {clients.Length} clients in {options.Rooms} rooms.");

    // 0. The warm-up, not measured: the same load, shorter, until every client received all of its room's messages.
    if (options.Warmup > 0)
    {
        Task[] warmedUp = clients.Select((_, i) => clients[i].ExpectAsync(options.Warmup * RoomClients(i))).ToArray();
        await Task.WhenAll(clients.Select(client => client.SendAsync(options.Warmup, options.InFlight, timeout.Token)));
        await Task.WhenAll(warmedUp).WaitAsync(TimeSpan.FromSeconds(30), timeout.Token);
        foreach (ILoadClient client in clients)
        {
            client.Restart();
        }

        Console.WriteLine($"Warmed up with {options.Warmup} messages per client.");
    }

    // 1. Throughput, latency, loss, CPU; profiled, when asked, over just this phase.
    await using PerfRecording? perf = options.PerfDirectory is { } perfDirectory
        ? await PerfRecording.StartAsync(servers.ProcessIds, Path.Combine(perfDirectory, $"{target}.perf.data"))
        : null;
    TimeSpan cpuBefore = servers.CpuTime;
    long started = Stopwatch.GetTimestamp();
    Task[] received = clients.Select((client, i) => client.ExpectAsync(roomMessages[i % options.Rooms])).ToArray();
    await Task.WhenAll(clients.Select((client, i) => client.SendAsync(shares[i], options.InFlight, timeout.Token)));

    // Every message was acked: what has not arrived a while after that is lost (or the server closed its client).
    using var settle = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
    settle.CancelAfter(TimeSpan.FromSeconds(30));
    try
    {
        await Task.WhenAll(received).WaitAsync(settle.Token);
    }
    catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
    {
        Console.Error.WriteLine($"{target}: not every delivery arrived: {e.Message}");
    }

    TimeSpan elapsed = Stopwatch.GetElapsedTime(started);
    TimeSpan cpu = servers.CpuTime - cpuBefore;
    if (perf is not null)
    {
        await perf.StopAsync();
    }

    long[] latencies = clients.SelectMany(client => client.Latencies).Order().ToArray();
    long expectedDeliveries = clients.Select((_, i) => roomMessages[i % options.Rooms]).Sum();
    var result = new LoadResult(target, latencies, expectedDeliveries - latencies.Length, elapsed, cpu, servers.PeakResidentBytes);
    foreach (ILoadClient client in clients)
    {
        await client.DisposeAsync();
    }

    // 2. The service's memory across connect/abort cycles.
    if (target == "service" && options.Cycles > 0)
    {
        await WaitForNoConnectionsAsync(server, timeout.Token);
        var before = await server.CollectAsync();
        long cyclesStarted = Stopwatch.GetTimestamp();
        await Parallel.ForAsync(0, options.Cycles, new ParallelOptions { MaxDegreeOfParallelism = options.CycleConcurrency, CancellationToken = timeout.Token }, async (i, ct) =>
        {
            using var socket = new ClientWebSocket();
            await socket.ConnectAsync(server.ClientUri($"room{i % options.Rooms}", $"cycle {i}"), ct);
            socket.Abort();
        });
        TimeSpan cycling = Stopwatch.GetElapsedTime(cyclesStarted);
        await WaitForNoConnectionsAsync(server, timeout.Token);
        var after = await server.CollectAsync();

        static string Megabytes(long bytes) => $"{bytes / 1024.0 / 1024.0:0.0} MB";
        Console.WriteLine();
        Console.WriteLine("| the service's memory | value |");
        Console.WriteLine("|---|---:|");
        Console.WriteLine($"| connect/abort cycles | {options.Cycles} in {cycling.TotalSeconds:0.0} s, {options.CycleConcurrency} at a time |");
        Console.WriteLine($"| working set after a full GC, before / after the cycles | {Megabytes(before.WorkingSet)} / {Megabytes(after.WorkingSet)} |");
        Console.WriteLine($"| working-set growth | {Megabytes(after.WorkingSet - before.WorkingSet)} |");
        Console.WriteLine($"| managed heap after a full GC, before / after the cycles | {Megabytes(before.ManagedHeap)} / {Megabytes(after.ManagedHeap)} |");
        Console.WriteLine($"| connections open after the cycles | {after.Connections} |");
    }

    return result;
}

static async Task WaitForNoConnectionsAsync(ServerProcess server, CancellationToken cancellationToken)
{
    // A benchmark, not a test: polling the service's count is the simplest honest wait here.
    while (await server.ConnectionsAsync() > 0)
    {
        await Task.Delay(100, cancellationToken);
    }
}
