using System.Net;
using System.Net.Http.Json;
using Chat.Api;
using Chat.Tests.Support;

namespace Chat.Tests.Security;

/// <summary>A flood of posts from one address gets 429 once its burst is spent; reading is not limited.</summary>
public sealed class WriteRateLimitTests : ServiceTest
{
    // A burst of 5, then one token every 1000 s: within a test, the sixth write is over the limit, whatever the clock.
    private static readonly string[] Limit = ["Chat:WriteBurst=5", "Chat:WritesPerSecond=0.001"];

    public override Task InitializeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Posts_beyond_the_burst_get_429_with_Retry_After_and_are_not_stored()
    {
        ChatServer server = await StartServerAsync(settings: Limit);

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (int i = 1; i <= 8; i++)
        {
            HttpResponseMessage response = await server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = $"flood {i}" });
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && refused is null)
            {
                refused = response;
            }
            else
            {
                response.Dispose();
            }
        }

        using (refused)
        {
            Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Created, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)], statuses);
            Assert.True(refused!.Headers.RetryAfter?.Delta > TimeSpan.Zero);
            Assert.Contains("Too many requests", (await refused.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        }

        Assert.Equal(5, (await server.HistoryAsync("lobby")).Count); // reading is not limited
        Assert.Equal(5, (await server.HistoryAsync("lobby")).Count);
    }

    [Fact]
    public async Task Webhook_management_shares_the_limit_of_its_address()
    {
        ChatServer server = await StartServerAsync(settings: Limit);
        for (int i = 1; i <= 5; i++)
        {
            await server.PostAsync("lobby", "ada", $"message {i}");
        }

        using HttpResponseMessage register = await server.Http.PostAsJsonAsync("/api/webhooks", new { room = "lobby", url = "http://127.0.0.1:9/hook" });
        using HttpResponseMessage delete = await server.Http.DeleteAsync("/api/webhooks/1");

        Assert.Equal(HttpStatusCode.TooManyRequests, register.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, delete.StatusCode);
    }
}
