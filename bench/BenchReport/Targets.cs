using System.Globalization;
using System.Text.Json;

namespace BenchReport;

/// <summary>The bounds of one benchmark method against its class's baseline, from bench/targets.json.</summary>
/// <remarks>A target bounds the ratio, the allocation, or both.</remarks>
internal sealed record Target(string Method, decimal? MaxRatio, decimal? MaxAllocatedBytes, decimal? MaxAllocatedOverBaselineBytes)
{
    public string Describe()
    {
        var parts = new List<string>();
        if (MaxRatio is { } ratio)
        {
            parts.Add("≤ " + ratio.ToString(CultureInfo.InvariantCulture));
        }

        if (MaxAllocatedBytes is { } bytes)
        {
            parts.Add("≤ " + Format.Bytes(bytes));
        }

        if (MaxAllocatedOverBaselineBytes is { } extra)
        {
            parts.Add("≤ baseline + " + Format.Bytes(extra));
        }

        return string.Join(", ", parts);
    }
}

/// <summary>A benchmark class as the table shows it: its title, its baseline method and its targets.</summary>
internal sealed record BenchmarkClass(string Class, string Title, string Baseline, IReadOnlyList<Target> Targets)
{
    public Target? Find(string method) => Targets.FirstOrDefault(target => target.Method == method);
}

/// <summary>
/// Reads bench/targets.json. A misspelt or unknown key is an error, not a bound silently left out.
/// </summary>
internal static class TargetsReader
{
    public static IReadOnlyList<BenchmarkClass> Read(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var root = document.RootElement;
        Keys(root, path, "about", "classes");
        var classes = new List<BenchmarkClass>();
        foreach (var element in Get(root, "classes", JsonValueKind.Array, path).EnumerateArray())
        {
            Keys(element, path, "class", "title", "baseline", "targets");
            string name = Get(element, "class", JsonValueKind.String, path).GetString()!;
            string where = $"{path}, class {name}";
            var targets = new List<Target>();
            foreach (var target in Get(element, "targets", JsonValueKind.Array, where).EnumerateArray())
            {
                Keys(target, where, "method", "maxRatio", "maxAllocatedBytes", "maxAllocatedOverBaselineBytes", "note");
                var bounds = new Target(
                    Get(target, "method", JsonValueKind.String, where).GetString()!,
                    Optional(target, "maxRatio", where),
                    Optional(target, "maxAllocatedBytes", where),
                    Optional(target, "maxAllocatedOverBaselineBytes", where));
                if (bounds is { MaxRatio: null, MaxAllocatedBytes: null, MaxAllocatedOverBaselineBytes: null })
                {
                    throw new InvalidDataException($"{where}: the target of {bounds.Method} bounds nothing.");
                }

                targets.Add(bounds);
            }

            var item = new BenchmarkClass(
                name,
                Get(element, "title", JsonValueKind.String, where).GetString()!,
                Get(element, "baseline", JsonValueKind.String, where).GetString()!,
                targets);
            if (targets.Any(target => target.Method == item.Baseline) || targets.DistinctBy(target => target.Method).Count() != targets.Count)
            {
                throw new InvalidDataException($"{where}: a target for the baseline, or two targets for one method.");
            }

            if (classes.Any(known => known.Class == name))
            {
                throw new InvalidDataException($"{path}: the class {name} is listed twice.");
            }

            classes.Add(item);
        }

        return classes;
    }

    private static void Keys(JsonElement element, string where, params string[] allowed)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{where}: an object expected, found {element.ValueKind}.");
        }

        foreach (var property in element.EnumerateObject())
        {
            if (!allowed.Contains(property.Name))
            {
                throw new InvalidDataException($"{where}: unknown key \"{property.Name}\" (known: {string.Join(", ", allowed)}).");
            }
        }
    }

    private static JsonElement Get(JsonElement element, string key, JsonValueKind kind, string where) =>
        element.TryGetProperty(key, out var value) && value.ValueKind == kind
            ? value
            : throw new InvalidDataException($"{where}: \"{key}\" must be a {kind}.");

    private static decimal? Optional(JsonElement element, string key, string where) =>
        element.TryGetProperty(key, out _) ? Get(element, key, JsonValueKind.Number, where).GetDecimal() : null;
}
