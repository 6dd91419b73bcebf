using System.Net;
using System.Text.RegularExpressions;
using Chat.Tests.Support;

namespace Chat.Tests.Security;

/// <summary>The service as a user starts it, without an admin key set: it makes one, shows it once, and keeps only its
/// hash.</summary>
public sealed partial class GeneratedAdminKeyTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Fact]
    public async Task Without_a_configured_key_one_is_generated_shown_once_and_kept_across_restarts()
    {
        string key;
        await using (ChatProcess first = await ChatProcess.StartAsync(_directory.Path, "Security:AdminApiKey="))
        {
            key = GeneratedKey().Match(first.Output).Groups[1].Value;
            Assert.Matches("^[A-Za-z0-9_-]{43}$", key);
            Assert.Equal(HttpStatusCode.OK, await ListWebhooksAsync(first.BaseAddress, key));
        }

        await using ChatProcess second = await ChatProcess.StartAsync(_directory.Path, "Security:AdminApiKey=");
        Assert.DoesNotMatch(GeneratedKey(), second.Output);
        Assert.DoesNotContain(key, second.Output, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, await ListWebhooksAsync(second.BaseAddress, key));
        Assert.Equal(HttpStatusCode.Unauthorized, await ListWebhooksAsync(second.BaseAddress, key[..^1] + (key[^1] == 'A' ? 'B' : 'A')));
    }

    private static async Task<HttpStatusCode> ListWebhooksAsync(Uri service, string key)
    {
        using HttpClient caller = AdminKeyTests.Caller(service, key);
        using HttpResponseMessage response = await caller.GetAsync("/api/webhooks");
        return response.StatusCode;
    }

    public void Dispose() => _directory.Dispose();

    [GeneratedRegex(@"shown this once, and only its hash is kept: (\S+)")]
    private static partial Regex GeneratedKey();
}
