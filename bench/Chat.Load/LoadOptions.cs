using System.Globalization;

namespace Chat.Load;

/// <summary>
/// The generator's command line: <c>--targets service,raw,signalr --clients 500 --rooms 10 --each 20 --in-flight 4</c>,
/// or <c>--messages M</c> (in all) instead of <c>--each</c>, <c>--cycles C</c> for the service's memory check, and
/// <c>--perf DIR</c> to sample each server with Linux perf while the messages flow (<c>bench/profile.sh</c>), and
/// <c>--postgres CONNECTION</c> to run the service on PostgreSQL (a fresh database on that server for each run), on
/// <c>--nodes N</c> processes sharing it (<c>bench/load-postgres.sh</c>), and <c>--warmup W</c> messages per client
/// before what is measured.
/// </summary>
internal sealed record LoadOptions(IReadOnlyList<string> Targets, int Clients, int Rooms, int Messages, int InFlight, int Cycles, int CycleConcurrency)
{
    /// <summary>Where <c>perf record</c> writes <c>&lt;target&gt;.perf.data</c> for each server; null for no profile.</summary>
    public string? PerfDirectory { get; private init; }

    /// <summary>A PostgreSQL server's connection string (its maintenance database) for the service; null for SQLite.</summary>
    public string? Postgres { get; private init; }

    /// <summary>How many processes of the service share its database (PostgreSQL only); clients go round them.</summary>
    public int Nodes { get; private init; } = 1;

    /// <summary>How many messages each client sends, and every client receives from its room, before the measured
    /// phase: the servers' and the generator's code compiled and tuned, their pools grown, as in a server that has been
    /// running. 0 for none.</summary>
    public int Warmup { get; private init; }

    public static readonly string[] KnownTargets = ["service", "raw", "signalr"];

    public static LoadOptions Parse(string[] args)
    {
        var values = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            ["--clients"] = 500,
            ["--rooms"] = 10,
            ["--messages"] = 0,
            ["--each"] = 0,
            ["--in-flight"] = 1,
            ["--cycles"] = 0,
            ["--cycle-concurrency"] = 32,
            ["--nodes"] = 1,
            ["--warmup"] = 0,
        };
        string[] targets = ["service"];
        string? perfDirectory = null;
        string? postgres = null;
        for (int i = 0; i < args.Length; i += 2)
        {
            if (args[i] == "--postgres" && i + 1 < args.Length)
            {
                postgres = args[i + 1];
                continue;
            }

            if (args[i] == "--perf" && i + 1 < args.Length)
            {
                perfDirectory = Path.GetFullPath(args[i + 1]);
                continue;
            }

            if (args[i] == "--targets" && i + 1 < args.Length)
            {
                targets = args[i + 1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (targets.Length == 0 || targets.Except(KnownTargets).Any() || targets.Distinct().Count() != targets.Length)
                {
                    throw new ArgumentException($"--targets is a list of distinct names among {string.Join(',', KnownTargets)}.");
                }

                continue;
            }

            if (!values.ContainsKey(args[i]) || i + 1 >= args.Length
                || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int value))
            {
                throw new ArgumentException(
                    $"Unknown or bad argument '{args[i]}'. Arguments: --targets {string.Join(',', KnownTargets)}, {string.Join(' ', values.Keys.Select(key => key + " N"))}, --perf DIR, --postgres CONNECTION.");
            }

            values[args[i]] = value;
        }

        if ((values["--messages"] > 0) == (values["--each"] > 0))
        {
            throw new ArgumentException("Give exactly one of --messages (in all) and --each (per client).");
        }

        int messages = values["--each"] > 0 ? checked(values["--each"] * values["--clients"]) : values["--messages"];
        var options = new LoadOptions(targets, values["--clients"], values["--rooms"], messages, values["--in-flight"], values["--cycles"], values["--cycle-concurrency"])
        {
            PerfDirectory = perfDirectory,
            Postgres = postgres,
            Nodes = values["--nodes"],
            Warmup = values["--warmup"],
        };
        if (options.Nodes < 1 || (options.Nodes > 1 && postgres is null))
        {
            throw new ArgumentException("--nodes is at least 1, and more than 1 only with --postgres: SQLite has one node.");
        }

        if (options.Cycles > 0 && options.Nodes > 1)
        {
            throw new ArgumentException("--cycles checks one node's memory: run it with --nodes 1.");
        }
        if (options.Clients < 1 || options.Rooms < 1 || options.InFlight < 1 || options.CycleConcurrency < 1
            || options.Rooms > options.Clients || options.Messages < options.Clients)
        {
            throw new ArgumentException(
                "--clients, --rooms, --in-flight and --cycle-concurrency are at least 1, --rooms at most --clients, and every client sends.");
        }

        if (options.Cycles > 0 && !targets.Contains("service"))
        {
            throw new ArgumentException("--cycles checks the service's memory: include it in --targets.");
        }

        return options;
    }

    public override string ToString() =>
        $"{Clients} clients, {Rooms} rooms, {Messages} messages ({(double)Messages / Clients:0.#} each), {InFlight} in flight per client; "
        + (Warmup > 0 ? $"after a warm-up of {Warmup} each; " : "")
        + (Postgres is null ? "the service on SQLite" : $"the service on PostgreSQL, {Nodes} node{(Nodes == 1 ? "" : "s")}");
}
