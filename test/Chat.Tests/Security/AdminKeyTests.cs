using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Chat.Api;
using Chat.Tests.Support;

namespace Chat.Tests.Security;

/// <summary>Webhook management needs the admin API key; posting and reading do not.</summary>
public sealed class AdminKeyTests : ServiceTest
{
    [Theory]
    [InlineData(null)]
    [InlineData("not-the-admin-key-at-all")]
    [InlineData("test-admin-key-not-a-secreT")]
    public async Task Webhook_management_without_the_admin_key_gets_401_and_changes_nothing(string? key)
    {
        await Server.RegisterWebhookAsync("lobby", new Uri("http://127.0.0.1:9/hook"));
        using HttpClient caller = Caller(Server.BaseAddress, key);

        using HttpResponseMessage list = await caller.GetAsync("/api/webhooks");
        using HttpResponseMessage register = await caller.PostAsJsonAsync("/api/webhooks", new { room = "lobby", url = "http://127.0.0.1:9/other" });
        using HttpResponseMessage delete = await caller.DeleteAsync("/api/webhooks/1");

        foreach (HttpResponseMessage response in new[] { list, register, delete })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
            Assert.Contains("admin API key", (await response.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        }

        Assert.Single(await Server.Service.Store.GetWebhooksAsync(CancellationToken.None));
    }

    [Fact]
    public async Task The_admin_key_is_never_taken_from_the_query_not_even_on_a_websocket_request()
    {
        using HttpClient caller = Caller(Server.BaseAddress, key: null);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/webhooks?access_token={ChatServer.AdminApiKey}");
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");

        using HttpResponseMessage response = await caller.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Posting_and_reading_need_no_key()
    {
        using HttpClient caller = Caller(Server.BaseAddress, key: null);

        using HttpResponseMessage posted = await caller.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "open" });
        MessagePage? page = await caller.GetFromJsonAsync("/api/rooms/lobby/messages", ChatJson.Default.MessagePage);

        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        Assert.Equal("open", Assert.Single(page!.Messages).Text);
    }

    internal static HttpClient Caller(Uri service, string? key)
    {
        var caller = new HttpClient { BaseAddress = service };
        if (key is not null)
        {
            caller.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return caller;
    }

}
