using System.Net;
using System.Net.Http.Json;
using Chat.Api;
using Chat.Storage;
using Chat.Tests.Support;
using Chat.Webhooks;

namespace Chat.Tests.Webhooks;

/// <summary>Where webhooks may go: public addresses, never the service itself, no redirects, a cap per room, and URLs
/// listed without their secrets.</summary>
public sealed class WebhookDestinationTests : ReceiverTest
{
    [Theory]
    [InlineData("http://127.0.0.1/")]
    [InlineData("http://127.1/")]
    [InlineData("http://2130706433/")]
    [InlineData("http://0x7f000001/")]
    [InlineData("http://[::1]/")]
    [InlineData("http://[::ffff:127.0.0.1]/")]
    [InlineData("http://localhost/")]
    [InlineData("http://0.0.0.0/")]
    [InlineData("http://10.1.2.3/")]
    [InlineData("http://172.16.0.1/")]
    [InlineData("http://192.168.1.1/")]
    [InlineData("http://100.64.0.1/")]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://[fd00::1]/")]
    [InlineData("http://[fe80::1]/")]
    [InlineData("http://224.0.0.1/")]
    [InlineData("http://255.255.255.255/")]
    public async Task An_internal_address_is_refused_at_registration(string url)
    {
        ChatServer server = await StartServerAsync(settings: [ChatServer.NoLoopbackReceivers]);

        using HttpResponseMessage response = await RegisterAsync(server, "lobby", url);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("public addresses only", (await response.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        Assert.Empty(await server.Service.Store.GetWebhooksAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData("http://0.0.0.0:{port}/api/rooms/lobby/messages")]
    [InlineData("http://[::ffff:0.0.0.0]:{port}/api/rooms/lobby/messages")]
    [InlineData("http://[::]:{port}/api/rooms/lobby/messages")]
    public async Task The_services_own_port_on_the_unspecified_address_is_refused_even_when_every_network_is_allowed(string url)
    {
        ChatServer server = await StartServerAsync(settings: ["Webhooks:AllowedNetworks:0=0.0.0.0/0", "Webhooks:AllowedNetworks:1=::/0"]);

        using HttpResponseMessage response = await RegisterAsync(server, "lobby", url.Replace("{port}", server.BaseAddress.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Theory]
    [InlineData("http://@example.com/hook", "user name or password")]
    [InlineData("http://127.0.0.1:0/hook", "port other than 0")]
    public async Task An_empty_user_name_or_port_0_is_refused(string url, string says)
    {
        ChatServer server = await StartServerAsync();

        using HttpResponseMessage response = await RegisterAsync(server, "lobby", url);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(says, (await response.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
    }

    [Fact]
    public async Task A_url_with_a_user_name_and_password_is_refused()
    {
        ChatServer server = await StartServerAsync();
        var url = new UriBuilder(Receiver.Url) { UserName = "user", Password = "pw" }.Uri;

        using HttpResponseMessage response = await RegisterAsync(server, "lobby", url.AbsoluteUri);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("user name or password", (await response.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        Assert.Empty(await server.Service.Store.GetWebhooksAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_webhook_to_the_service_itself_is_refused_at_registration_even_on_an_allowed_network()
    {
        ChatServer server = await StartServerAsync(); // 127.0.0.1/32 allowed: the receivers' network, and the service's
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(server, "lobby", Receiver.Url.AbsoluteUri)).StatusCode);

        string self = new Uri(server.BaseAddress, "/api/rooms/lobby/messages").AbsoluteUri;
        using HttpResponseMessage response = await RegisterAsync(server, "lobby", self);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Single(await server.Service.Store.GetWebhooksAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_webhook_to_the_service_itself_that_got_past_registration_is_refused_when_it_connects_and_not_retried()
    {
        ChatServer server = await StartServerAsync();

        // Stored directly, as a registration made before the check (or a name that resolved elsewhere then) would be.
        string self = new Uri(server.BaseAddress, "/api/rooms/lobby/messages").AbsoluteUri;
        await server.Service.Store.AddWebhookAsync("lobby", self, "whsec_test", maxPerRoom: 10, CancellationToken.None);
        await server.PostAsync("lobby", "ada", "one message");

        Assert.Equal(new OutboxCounts(0, 0, 1), await server.WaitForOutboxAsync(counts => counts.Failed == 1));
        Assert.Equal(["one message"], (await server.HistoryAsync("lobby")).Select(m => m.Text)); // no loop
        await server.StopAsync();
        Assert.Equal([("failed", 1, Refused)], await DatabaseFile.OutboxJobsAsync(Directory.Path)); // never connected
    }

    [Fact]
    public async Task A_delivery_to_an_internal_address_is_refused_when_it_connects()
    {
        ChatServer server = await StartServerAsync(settings: [ChatServer.NoLoopbackReceivers]);
        await server.Service.Store.AddWebhookAsync("lobby", Receiver.Url.AbsoluteUri, "whsec_test", maxPerRoom: 10, CancellationToken.None);

        await server.PostAsync("lobby", "ada", "to nowhere");

        Assert.Equal(new OutboxCounts(0, 0, 1), await server.WaitForOutboxAsync(counts => counts.Failed == 1));
        await server.StopAsync();
        Assert.Equal([("failed", 1, Refused)], await DatabaseFile.OutboxJobsAsync(Directory.Path));
        Assert.Empty(Receiver.Outcomes);
    }

    [Fact]
    public async Task A_request_carrying_the_delivery_header_is_refused()
    {
        ChatServer server = await StartServerAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/rooms/lobby/messages")
        {
            Content = JsonContent.Create(new { name = "loop", text = "again" }),
        };
        request.Headers.Add(WebhookDispatcher.DeliveryHeader, "1");

        using HttpResponseMessage response = await server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Empty(await server.HistoryAsync("lobby"));
    }

    [Fact]
    public async Task A_redirect_is_not_followed_and_fails_the_delivery_at_once()
    {
        ChatServer server = await StartServerAsync();
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.Respond = (_, _) => Task.FromResult((int)HttpStatusCode.TemporaryRedirect);

        await server.PostAsync("lobby", "ada", "moved");

        Assert.Equal(new OutboxCounts(0, 0, 1), await server.WaitForOutboxAsync(counts => counts.Failed == 1));
        await server.StopAsync();
        WebhookOutcome outcome = Assert.Single(Receiver.Outcomes);
        Assert.Equal((1, (int?)307), (outcome.Request.Attempt, outcome.Status));
    }

    [Theory]
    [InlineData(400)]
    [InlineData(404)]
    [InlineData(410)]
    public async Task A_client_error_fails_the_delivery_at_once(int status)
    {
        ChatServer server = await StartServerAsync();
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.Respond = (_, _) => Task.FromResult(status);

        await server.PostAsync("lobby", "ada", "refused");

        await server.WaitForOutboxAsync(counts => counts.Failed == 1);
        await server.StopAsync();
        Assert.Equal([(1, (int?)status)], Receiver.Outcomes.Select(o => (o.Request.Attempt, o.Status)));
    }

    [Theory]
    [InlineData(408)]
    [InlineData(429)]
    [InlineData(503)]
    public async Task A_timeout_throttling_or_server_error_answer_is_tried_again(int status)
    {
        ChatServer server = await StartServerAsync(settings: ["Webhooks:MaxAttempts=3"]);
        await server.RegisterWebhookAsync("lobby", Receiver.Url);
        Receiver.Respond = (_, _) => Task.FromResult(status);

        await server.PostAsync("lobby", "ada", "busy");

        await server.WaitForOutboxAsync(counts => counts.Failed == 1);
        await server.StopAsync();
        Assert.Equal([1, 2, 3], Receiver.Outcomes.Select(o => o.Request.Attempt));
    }

    [Fact]
    public async Task A_room_has_at_most_MaxPerRoom_webhooks()
    {
        ChatServer server = await StartServerAsync(settings: ["Webhooks:MaxPerRoom=2"]);
        Uri first = new(Receiver.Url, "?n=1");
        Uri second = new(Receiver.Url, "?n=2");

        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(server, "lobby", first.AbsoluteUri)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(server, "lobby", second.AbsoluteUri)).StatusCode);
        using HttpResponseMessage third = await RegisterAsync(server, "lobby", new Uri(Receiver.Url, "?n=3").AbsoluteUri);

        Assert.Equal(HttpStatusCode.Conflict, third.StatusCode);
        Assert.Contains("2 webhooks", (await third.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        Assert.Equal(HttpStatusCode.OK, (await RegisterAsync(server, "lobby", first.AbsoluteUri)).StatusCode); // already there
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(server, "other", first.AbsoluteUri)).StatusCode);
        Assert.Equal(3, (await server.Service.Store.GetWebhooksAsync(CancellationToken.None)).Count);
    }

    [Fact]
    public async Task The_listing_shows_no_query_or_fragment_of_a_webhook_url()
    {
        ChatServer server = await StartServerAsync();
        await RegisterAsync(server, "lobby", new Uri(Receiver.Url, "?token=s3cret#part").AbsoluteUri);

        string listing = await server.Http.GetStringAsync("/api/webhooks");
        IReadOnlyList<WebhookRegistration> webhooks = (await server.Http.GetFromJsonAsync("/api/webhooks", ChatJson.Default.IReadOnlyListWebhookRegistration))!;

        Assert.DoesNotContain("s3cret", listing, StringComparison.Ordinal);
        Assert.Equal(Receiver.Url.AbsoluteUri, Assert.Single(webhooks).Url);
    }

    [Fact]
    public async Task The_log_of_failed_attempts_shows_no_path_query_or_secret_of_the_url()
    {
        ChatServer server = await StartServerAsync(settings: ["Webhooks:MaxAttempts=2"]);
        await server.RegisterWebhookAsync("lobby", new Uri(Receiver.Url, "/hook/T0KEN-IN-PATH?token=s3cret"));
        Receiver.Respond = (_, _) => Task.FromResult(500);

        await server.PostAsync("lobby", "ada", "logged");
        await server.WaitForOutboxAsync(counts => counts.Failed == 1);

        string[] attempts = [.. server.Logs.Lines.Where(line => line.Contains("Webhook job", StringComparison.Ordinal))];
        Assert.Equal(2, attempts.Length); // one retried, one given up
        Assert.All(attempts, line => Assert.Contains(Receiver.Url.GetLeftPart(UriPartial.Authority), line, StringComparison.Ordinal));
        Assert.All(server.Logs.Lines, line => Assert.DoesNotContain("s3cret", line, StringComparison.Ordinal));
        Assert.All(server.Logs.Lines, line => Assert.DoesNotContain("T0KEN", line, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://user:pw@example.com/a/b?token=x#y", "http://example.com/a/b")]
    [InlineData("https://example.com:8443/hook", "https://example.com:8443/hook")]
    [InlineData("not a url", "(not a URL)")]
    public void Redact_keeps_the_scheme_host_port_and_path_only(string url, string redacted) =>
        Assert.Equal(redacted, WebhookDestinations.Redact(url));

    // What the outbox records of a delivery refused at connect time.
    private const string Refused = "the destination is not one webhooks may be sent to";

    private static Task<HttpResponseMessage> RegisterAsync(ChatServer server, string room, string url) =>
        server.Http.PostAsJsonAsync("/api/webhooks", new { room, url });
}
