using System.Text.Json;

namespace AnalyzerComparison;

/// <summary>A diagnostic of the compiler's SARIF log: its rule and the file it is in.</summary>
internal sealed record SarifResult(string RuleId, string File);

internal static class Sarif
{
    /// <summary>The results of a SARIF 2.1 log the compiler wrote (<c>-p:ErrorLog=path,version=2.1</c>).</summary>
    public static List<SarifResult> Read(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var results = new List<SarifResult>();
        foreach (var run in document.RootElement.GetProperty("runs").EnumerateArray())
        {
            if (!run.TryGetProperty("results", out var runResults))
            {
                continue;
            }

            foreach (var result in runResults.EnumerateArray())
            {
                if (result.TryGetProperty("locations", out var locations) && locations.GetArrayLength() > 0
                    && locations[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString() is { } uri)
                {
                    results.Add(new SarifResult(result.GetProperty("ruleId").GetString()!, new Uri(uri).LocalPath));
                }
            }
        }

        return results;
    }
}
