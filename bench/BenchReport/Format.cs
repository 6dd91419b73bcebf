using System.Globalization;

namespace BenchReport;

/// <summary>How the table prints BenchmarkDotNet's figures: always in invariant culture.</summary>
internal static class Format
{
    public static string Time(decimal? nanoseconds) => nanoseconds switch
    {
        null => "—",
        < 1_000m => Invariant(nanoseconds.Value, "0.00") + " ns",
        < 1_000_000m => Invariant(nanoseconds.Value / 1_000m, "0.00") + " µs",
        _ => Invariant(nanoseconds.Value / 1_000_000m, "0.00") + " ms",
    };

    public static string Bytes(decimal? bytes) =>
        bytes is { } value ? Invariant(value, "#,0.##") + " B" : "—";

    /// <summary>A ratio as BenchmarkDotNet printed it (its two decimals are kept by the parse).</summary>
    public static string Ratio(decimal? ratio) =>
        ratio is { } value ? value.ToString(CultureInfo.InvariantCulture) : "—";

    private static string Invariant(decimal value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
