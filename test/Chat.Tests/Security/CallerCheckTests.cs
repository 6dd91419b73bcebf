using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using Chat.Tests.Support;

namespace Chat.Tests.Security;

/// <summary>What a page of another origin, or a request for another host name, can make the service do: nothing.</summary>
public sealed class CallerCheckTests : ServiceTest
{
    private const string Foreign = "http://evil.example";

    [Fact]
    public async Task A_state_changing_request_from_another_origin_is_refused()
    {
        using HttpResponseMessage post = await PostAsync(Foreign);
        using var delete = new HttpRequestMessage(HttpMethod.Delete, "/api/webhooks/1");
        delete.Headers.Add("Origin", Foreign);
        using HttpResponseMessage deleted = await Server.Http.SendAsync(delete);

        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, deleted.StatusCode);
        Assert.Empty(await Server.HistoryAsync("lobby"));
    }

    [Fact]
    public async Task A_request_from_the_services_own_origin_or_from_no_page_at_all_is_accepted()
    {
        using HttpResponseMessage own = await PostAsync(Server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using HttpResponseMessage noOrigin = await PostAsync(origin: null);

        Assert.Equal(HttpStatusCode.Created, own.StatusCode);
        Assert.Equal(HttpStatusCode.Created, noOrigin.StatusCode);
        Assert.Equal(2, (await Server.HistoryAsync("lobby")).Count);
    }

    [Fact]
    public async Task An_origin_the_settings_allow_is_accepted()
    {
        ChatServer server = await StartServerAsync(settings: ["Security:AllowedOrigins:0=https://Chat.Example.com"]);

        using HttpResponseMessage allowed = await PostAsync("https://chat.example.com", server);
        using HttpResponseMessage otherPort = await PostAsync("https://chat.example.com:8443", server);

        Assert.Equal(HttpStatusCode.Created, allowed.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, otherPort.StatusCode);
    }

    [Theory]
    [InlineData("null")]
    [InlineData("not an origin")]
    [InlineData("http://127.0.0.1")] // the service's address, not its origin: the port differs
    public async Task Anything_that_is_not_the_services_origin_is_refused(string origin)
    {
        using HttpResponseMessage response = await PostAsync(origin);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task A_websocket_from_another_origin_is_refused_before_the_upgrade()
    {
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", Foreign);
        socket.Options.CollectHttpResponseDetails = true;

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(Server.WebSocketUri("lobby", "admin"), CancellationToken.None));

        Assert.Equal(HttpStatusCode.Forbidden, socket.HttpStatusCode);
        Assert.Equal(0, Server.Service.Hub.Count);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData(null)]
    public async Task A_body_that_is_not_sent_as_json_gets_415(string? contentType)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"name":"ada","text":"hi"}"""));
        if (contentType is not null)
        {
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        using HttpResponseMessage response = await Server.Http.PostAsync("/api/rooms/lobby/messages", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Empty(await Server.HistoryAsync("lobby"));
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("rebound.example:80")]
    public async Task A_request_for_a_host_name_the_service_does_not_answer_to_gets_400(string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/rooms");
        request.Headers.Host = host;

        using HttpResponseMessage response = await Server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Every_response_forbids_sniffing_and_framing_and_the_api_allows_no_content()
    {
        using HttpResponseMessage page = await Server.Http.GetAsync("/");
        using HttpResponseMessage api = await Server.Http.GetAsync("/api/rooms");
        using HttpResponseMessage missing = await Server.Http.GetAsync("/nothing-here");

        foreach (HttpResponseMessage response in new[] { page, api, missing })
        {
            Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
            Assert.Equal("DENY", Header(response, "X-Frame-Options"));
            Assert.Equal("no-referrer", Header(response, "Referrer-Policy"));
            Assert.Contains("frame-ancestors 'none'", Header(response, "Content-Security-Policy"), StringComparison.Ordinal);
        }

        Assert.StartsWith("default-src 'none'", Header(api, "Content-Security-Policy"), StringComparison.Ordinal);
        Assert.Matches("script-src 'sha256-[A-Za-z0-9+/=]{44}';", Header(page, "Content-Security-Policy"));
        Assert.DoesNotContain("unsafe-inline", Header(page, "Content-Security-Policy"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_error_the_framework_answers_is_the_apis_json_error_with_the_headers()
    {
        using HttpResponseMessage missing = await Server.Http.GetAsync("/nothing-here");
        using HttpResponseMessage method = await Server.Http.PutAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "hi" });
        using HttpResponseMessage head = await Server.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"));

        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("Not Found.", (await missing.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, method.StatusCode);
        Assert.Equal("Method Not Allowed.", (await method.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        Assert.Equal("nosniff", Header(method, "X-Content-Type-Options"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
    }

    private Task<HttpResponseMessage> PostAsync(string? origin, ChatServer? server = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/rooms/lobby/messages")
        {
            Content = JsonContent.Create(new { name = "admin", text = "posted" }),
        };
        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        return (server ?? Server).Http.SendAsync(request);
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out IEnumerable<string>? values) ? string.Join(", ", values) : "";
}
