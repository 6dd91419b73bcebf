using System.Net;
using System.Net.Http.Json;
using Chat.Api;
using Chat.Tests.Support;

namespace Chat.Tests.Storage;

/// <summary><c>/health</c> says whether the database can be written and read now; why not is for the admin.</summary>
public sealed class HealthTests : ServiceTest
{
    [Fact]
    public async Task Anyone_learns_that_the_service_is_healthy_and_only_the_admin_learns_why()
    {
        using var anonymous = new HttpClient { BaseAddress = Server.BaseAddress };

        using HttpResponseMessage health = await anonymous.GetAsync("/health");
        using HttpResponseMessage refused = await anonymous.GetAsync("/health/details");
        HealthDetails details = (await Server.Http.GetFromJsonAsync("/health/details", ChatJson.Default.HealthDetails))!;

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("""{"status":"healthy"}""", await health.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("healthy", details.Status);
        Assert.Equal(("database", "healthy"), Check(details, "database"));
        Assert.Equal(("pool:chat-readers", "healthy"), Check(details, "pool:chat-readers")); // the pool's own check
        Assert.DoesNotContain(details.Checks, check => check.Name == "pool:chat-writer"); // writers queue by design
        Assert.Equal(("queue:webhooks", "healthy"), Check(details, "queue:webhooks"));
        Assert.Equal(new Chat.Storage.OutboxCounts(0, 0, 0), details.Outbox);
    }

    [Fact]
    public async Task With_its_database_file_deleted_the_service_refuses_writes_and_says_it_is_unhealthy()
    {
        await Server.PostAsync("lobby", "ada", "before");
        foreach (string file in System.IO.Directory.GetFiles(Directory.Path, "chat.db*"))
        {
            File.Delete(file);
        }

        using HttpResponseMessage post = await Server.Http.PostAsJsonAsync("/api/rooms/lobby/messages", new { name = "ada", text = "lost?" });
        using HttpResponseMessage health = await Server.Http.GetAsync("/health");
        using HttpResponseMessage detailed = await Server.Http.GetAsync("/health/details");

        // Not a 201 for a message that would live only in a deleted file.
        Assert.Equal(HttpStatusCode.InternalServerError, post.StatusCode);
        Assert.Contains("not stored", (await post.Content.ReadFromJsonAsync(ChatJson.Default.ErrorResponse))!.Error);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Equal("""{"status":"unhealthy"}""", await health.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, detailed.StatusCode);
        HealthDetails details = (await detailed.Content.ReadFromJsonAsync(ChatJson.Default.HealthDetails))!;
        Assert.Equal(("database", "unhealthy"), Check(details, "database"));
        Assert.Contains("could not be written or read", details.Checks.Single(c => c.Name == "database").Description, StringComparison.Ordinal);
        Assert.Null(details.Outbox);
        Assert.False(File.Exists(Path.Combine(Directory.Path, "chat.db"))); // no new empty file in its place
    }

    private static (string, string) Check(HealthDetails details, string name) =>
        details.Checks.Where(check => check.Name == name).Select(check => (check.Name, check.Status)).Single();
}
