using System.Globalization;

namespace Chat.Load;

/// <summary>The generator's command line: <c>--clients 500 --rooms 10 --messages 10000 --cycles 10000</c>.</summary>
internal sealed record LoadOptions(int Clients, int Rooms, int Messages, int Cycles, int CycleConcurrency)
{
    public static LoadOptions Parse(string[] args)
    {
        var values = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            ["--clients"] = 500,
            ["--rooms"] = 10,
            ["--messages"] = 10_000,
            ["--cycles"] = 10_000,
            ["--cycle-concurrency"] = 32,
        };
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!values.ContainsKey(args[i]) || i + 1 >= args.Length
                || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < 1)
            {
                throw new ArgumentException(
                    $"Unknown or bad argument '{args[i]}'. Arguments: {string.Join(' ', values.Keys.Select(key => key + " N"))}, each N at least 1.");
            }

            values[args[i]] = value;
        }

        var options = new LoadOptions(values["--clients"], values["--rooms"], values["--messages"], values["--cycles"], values["--cycle-concurrency"]);
        if (options.Rooms > options.Clients || options.Messages < options.Clients)
        {
            throw new ArgumentException("--rooms is at most --clients, and --messages at least --clients (every client sends).");
        }

        return options;
    }
}
