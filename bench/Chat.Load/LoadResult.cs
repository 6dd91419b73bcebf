using System.Diagnostics;

namespace Chat.Load;

/// <summary>What one server did under the load.</summary>
/// <param name="Target">The server: <c>service</c>, <c>raw</c> or <c>signalr</c>.</param>
/// <param name="Latencies">Stopwatch ticks from send to receipt, one per delivery, in increasing order.</param>
/// <param name="Lost">Deliveries expected that never arrived.</param>
/// <param name="Elapsed">From the first send to the last delivery.</param>
/// <param name="ServerCpu">The server's CPU time (user and system) over that time.</param>
/// <param name="PeakResidentBytes">The server's peak resident memory.</param>
internal sealed record LoadResult(string Target, long[] Latencies, long Lost, TimeSpan Elapsed, TimeSpan ServerCpu, long PeakResidentBytes)
{
    public double DeliveredPerSecond => Latencies.Length / Elapsed.TotalSeconds;

    public double CpuMicrosecondsPerDelivery => ServerCpu.TotalMicroseconds / Math.Max(1, Latencies.Length);

    /// <summary>The mean latency, in milliseconds: with a closed loop (a fixed number of messages in flight), Little's
    /// law ties it to the throughput, whatever the shape of the distribution the percentiles show.</summary>
    public double Mean => Latencies.Length == 0 ? double.NaN : Latencies.Average() * 1000.0 / Stopwatch.Frequency;

    public double Percentile(double p) => Latencies.Length == 0
        ? double.NaN
        : Latencies[(int)Math.Min(Latencies.Length - 1, Math.Ceiling(p * Latencies.Length) - 1)] * 1000.0 / Stopwatch.Frequency;

    /// <summary>One row per server, with its throughput as a ratio to the raw server's and SignalR's when they ran.</summary>
    public static void WriteTable(IReadOnlyList<LoadResult> rows, TextWriter output)
    {
        LoadResult? raw = rows.FirstOrDefault(row => row.Target == "raw");
        LoadResult? signalR = rows.FirstOrDefault(row => row.Target == "signalr");
        output.WriteLine("| server | delivered msg/s | to raw | to SignalR | p50 | mean | p99 | lost | server CPU per delivery | peak RSS |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (LoadResult row in rows)
        {
            output.WriteLine(
                $"| {row.Target} | {row.DeliveredPerSecond:0} | {Ratio(row, raw)} | {Ratio(row, signalR)} | {row.Percentile(0.5):0} ms | {row.Mean:0} ms | {row.Percentile(0.99):0} ms | "
                + $"{row.Lost} | {row.CpuMicrosecondsPerDelivery:0.0} µs | {row.PeakResidentBytes / 1024.0 / 1024.0:0} MB |");
        }
    }

    private static string Ratio(LoadResult row, LoadResult? baseline) =>
        baseline is null ? "" : $"{row.DeliveredPerSecond / baseline.DeliveredPerSecond:0.00}x";
}
