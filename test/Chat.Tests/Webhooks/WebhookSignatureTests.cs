using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests.Webhooks;

/// <summary>A receiver verifies each delivery with the secret it was given once, at registration, as the README shows.</summary>
public sealed class WebhookSignatureTests : ServiceTest
{
    private WebhookReceiver _receiver = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _receiver = Own(await WebhookReceiver.StartAsync());
    }

    [Fact]
    public async Task A_receiver_verifies_every_attempt_with_the_secret_returned_at_registration()
    {
        string secret = await RegisterAsync(_receiver.Url);
        var answers = new Queue<int>([503, 200]);
        _receiver.Respond = (_, _) => Task.FromResult(answers.Dequeue());

        await Server.PostAsync("lobby", "ada", "signed");
        WebhookRequest[] attempts = [await _receiver.NextRequestAsync(), await _receiver.NextRequestAsync()];

        Assert.All(attempts, request => Assert.True(Verify(request, secret, Server.Time.GetUtcNow()), request.Signature));
        Assert.All(attempts, request => Assert.False(Verify(request, "whsec_" + new string('0', 64), Server.Time.GetUtcNow())));
        WebhookRequest tampered = attempts[0] with { Body = attempts[0].Body.Replace("signed", "forged", StringComparison.Ordinal) };
        Assert.False(Verify(tampered, secret, Server.Time.GetUtcNow()));
    }

    [Fact]
    public async Task A_replayed_delivery_is_refused_by_a_receiver_that_checks_the_time()
    {
        string secret = await RegisterAsync(_receiver.Url);
        await Server.PostAsync("lobby", "ada", "once");
        WebhookRequest request = await _receiver.NextRequestAsync();

        Assert.True(Verify(request, secret, Server.Time.GetUtcNow() + TimeSpan.FromMinutes(4)));
        Assert.False(Verify(request, secret, Server.Time.GetUtcNow() + TimeSpan.FromMinutes(6)));
    }

    [Fact]
    public async Task Each_webhook_has_its_own_secret_shown_only_when_it_is_created()
    {
        string first = await RegisterAsync(_receiver.Url);
        string second = await RegisterAsync(new Uri(_receiver.Url, "?n=2"));

        using HttpResponseMessage again = await Server.Http.PostAsJsonAsync("/api/webhooks", new { room = "lobby", url = _receiver.Url.AbsoluteUri });
        string listing = await Server.Http.GetStringAsync("/api/webhooks");

        Assert.NotEqual(first, second);
        Assert.Matches("^whsec_[0-9a-f]{64}$", first);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Null((await again.Content.ReadFromJsonAsync(ChatJson.Default.WebhookRegistration))!.Secret);
        Assert.DoesNotContain("whsec_", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain("whsec_", listing, StringComparison.Ordinal);
    }

    // What a receiver does (README, "Receiving webhooks"): t within five minutes of its clock, and the HMAC-SHA256 of
    // "<t>.<body>" with the secret, compared in constant time.
    private static bool Verify(WebhookRequest request, string secret, DateTimeOffset now)
    {
        Dictionary<string, string> parts = (request.Signature ?? "").Split(',')
            .Select(part => part.Split('=', 2))
            .Where(pair => pair.Length == 2)
            .ToDictionary(pair => pair[0], pair => pair[1]);
        if (!parts.TryGetValue("t", out string? t) || !parts.TryGetValue("v1", out string? v1)
            || !long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds)
            || Math.Abs(now.ToUnixTimeSeconds() - seconds) > 300)
        {
            return false;
        }

        byte[] expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{t}.{request.Body}"));
        return v1.Length == 64 && CryptographicOperations.FixedTimeEquals(expected, Convert.FromHexString(v1));
    }

    private async Task<string> RegisterAsync(Uri url)
    {
        using HttpResponseMessage response = await Server.Http.PostAsJsonAsync("/api/webhooks", new { room = "lobby", url = url.AbsoluteUri });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(ChatJson.Default.WebhookRegistration))!.Secret!;
    }
}
