using System.Text.Json;
using Chat.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;

namespace Chat.Tests.Security;

/// <summary>A page of another origin, in headless Chromium, tries what a cross-site attack would: post as "admin"
/// without a preflight, and open a WebSocket to read the room.</summary>
public sealed class CrossOriginPageTests : ServiceTest
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task A_page_of_another_origin_can_neither_post_nor_open_a_websocket()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: install Debian's chromium package (.ci/run does).");
        await using WebApplication attacker = await StartAttackerAsync();

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        IPage page = await browser.NewPageAsync();
        await page.GotoAsync(attacker.Urls.Single());

        // The attack, as a page script: a "simple" POST (no preflight), then a WebSocket.
        JsonElement outcome = await page.EvaluateAsync<JsonElement>(
            """
            async ([http, ws]) => {
              let post;
              try {
                await fetch(http + "/api/rooms/lobby/messages", {
                  method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" },
                  body: JSON.stringify({ name: "admin", text: "cross-site" }) });
                post = "sent";
              } catch (e) { post = "failed"; }
              const socket = await new Promise(resolve => {
                const s = new WebSocket(ws + "/ws/rooms/lobby?name=admin");
                s.onopen = () => resolve("open");
                s.onerror = () => resolve("error");
              });
              return { post, socket };
            }
            """,
            new[] { Server.BaseAddress.GetLeftPart(UriPartial.Authority), $"ws://{Server.BaseAddress.Authority}" });

        // The browser sent the POST (it cannot know), and the service stored nothing; the WebSocket never opened.
        Assert.Equal("sent", outcome.GetProperty("post").GetString());
        Assert.Equal("error", outcome.GetProperty("socket").GetString());
        Assert.Empty(await Server.HistoryAsync("lobby"));
        Assert.Equal(0, Server.Service.Hub.Count);
    }

    // Another origin: the same address, another port.
    private static async Task<WebApplication> StartAttackerAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(["--urls=http://127.0.0.1:0"]);
        builder.Logging.ClearProviders();
        WebApplication app = builder.Build();
        app.MapGet("/", () => Results.Content("<!doctype html><title>elsewhere</title><p>another site</p>", "text/html"));
        await app.StartAsync();
        return app;
    }
}
