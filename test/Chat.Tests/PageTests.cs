using Chat.Tests.Support;
using Microsoft.Playwright;

namespace Chat.Tests;

/// <summary>The page at <c>/</c>, in two headless Chromium pages that chat with each other.</summary>
public sealed class PageTests : ServiceTest
{
    /// <summary>Debian's Chromium; <c>.ci/run</c> installs it when it is missing.</summary>
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task Two_browsers_chat_with_each_other_and_see_the_history()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: install Debian's chromium package (.ci/run does).");
        await Server.PostAsync("lobby", "carol", "from before");

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        IPage ada = await JoinAsync(browser, "ada");
        IPage bob = await JoinAsync(browser, "bob");

        // Both see the history.
        foreach (IPage page in new[] { ada, bob })
        {
            await Assertions.Expect(page.Locator("#messages li").First).ToContainTextAsync("from before");
        }

        await SendAsync(ada, "hello from ada");
        await Assertions.Expect(bob.Locator("#messages li", new() { HasText = "hello from ada" })).ToHaveCountAsync(1);
        await SendAsync(bob, "hello from bob");
        await Assertions.Expect(ada.Locator("#messages li", new() { HasText = "hello from bob" })).ToHaveCountAsync(1);

        // Both pages show the same conversation, in the same order, as the service stored it.
        string[] expected = ["carolfrom before", "adahello from ada", "bobhello from bob"];
        foreach (IPage page in new[] { ada, bob })
        {
            await Assertions.Expect(page.Locator("#messages li")).ToHaveCountAsync(3);
            IReadOnlyList<string> shown = await page.Locator("#messages li").EvaluateAllAsync<string[]>(
                "items => items.map(item => item.querySelector('.name').textContent + item.querySelector('.text').textContent)");
            Assert.Equal(expected, shown);
        }

        Assert.Equal(["from before", "hello from ada", "hello from bob"], await DatabaseFile.MessageTextsAsync(Directory.Path));
    }

    private async Task<IPage> JoinAsync(IBrowser browser, string name)
    {
        IPage page = await browser.NewPageAsync();
        await page.GotoAsync(Server.BaseAddress.AbsoluteUri);
        await page.FillAsync("#name", name);
        await page.FillAsync("#room", "lobby");
        await page.ClickAsync("#join-button");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync($"Connected to lobby as {name}");
        return page;
    }

    private static async Task SendAsync(IPage page, string text)
    {
        await page.FillAsync("#text", text);
        await page.ClickAsync("#send-button");
    }
}
