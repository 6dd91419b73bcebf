using System.IO.Compression;
using System.Xml.Linq;

namespace Packages.Tests;

/// <summary>
/// The packages as their users meet them: what <c>dotnet pack</c> makes, and fresh apps from the SDK's templates that
/// reference them from a folder feed, build with no warning and run.
/// </summary>
public sealed class PackageTests(PackedFeed packed) : IClassFixture<PackedFeed>
{
    [Fact]
    public void Pack_makes_the_two_packages_each_with_its_symbols_package_and_nothing_else()
    {
        string[] files = [.. Directory.GetFiles(packed.Feed).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

        string version = packed.Version;
        Assert.Equal(
            [$"AsyncScopes.{version}.nupkg", $"AsyncScopes.{version}.snupkg", $"AsyncScopes.Hosting.{version}.nupkg", $"AsyncScopes.Hosting.{version}.snupkg"],
            files);
    }

    [Theory]
    [InlineData("AsyncScopes")]
    [InlineData("AsyncScopes.Hosting")]
    public void Each_package_names_its_license_repository_readme_and_tags(string id)
    {
        XElement metadata = Nuspec(id);

        Assert.Equal("expression", metadata.Element(Name("license"))?.Attribute("type")?.Value);
        Assert.Equal("MIT", metadata.Element(Name("license"))?.Value);
        Assert.Equal("README.md", metadata.Element(Name("readme"))?.Value);
        Assert.False(string.IsNullOrWhiteSpace(metadata.Element(Name("tags"))?.Value));
        XElement repository = metadata.Element(Name("repository")) ?? throw new Xunit.Sdk.XunitException("no repository");
        Assert.StartsWith("https://", repository.Attribute("url")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value);
        using ZipArchive package = ZipFile.OpenRead(Path.Combine(packed.Feed, $"{id}.{packed.Version}.nupkg"));
        Assert.NotNull(package.GetEntry("README.md"));
    }

    [Fact]
    public void The_hosting_package_brings_the_library_with_its_analyzers()
    {
        XElement dependency = Nuspec("AsyncScopes.Hosting").Descendants(Name("dependency"))
            .Single(element => element.Attribute("id")?.Value == "AsyncScopes");

        Assert.Equal(packed.Version, dependency.Attribute("version")?.Value);
        Assert.DoesNotContain("Analyzers", dependency.Attribute("exclude")?.Value ?? string.Empty, StringComparison.Ordinal);
    }

    [Fact]
    public void The_symbols_map_to_the_repository_by_SourceLink_with_machine_independent_paths()
    {
        using ZipArchive symbols = ZipFile.OpenRead(Path.Combine(packed.Feed, $"AsyncScopes.{packed.Version}.snupkg"));
        ZipArchiveEntry pdb = Assert.Single(symbols.Entries, entry => entry.FullName == "lib/net10.0/AsyncScopes.pdb");
        using var stream = new MemoryStream();
        pdb.Open().CopyTo(stream);
        stream.Position = 0;
        using var reader = System.Reflection.Metadata.MetadataReaderProvider.FromPortablePdbStream(stream);
        var metadata = reader.GetMetadataReader();

        string sourceLink = metadata.CustomDebugInformation
            .Select(metadata.GetCustomDebugInformation)
            .Where(info => metadata.GetGuid(info.Kind) == new Guid("CC110556-A091-4D38-9FEC-25AB9A351A6A"))
            .Select(info => System.Text.Encoding.UTF8.GetString(metadata.GetBlobBytes(info.Value)))
            .Single();
        string[] documents = [.. metadata.Documents.Select(handle => metadata.GetString(metadata.GetDocument(handle).Name))];

        string commit = Nuspec("AsyncScopes").Element(Name("repository"))!.Attribute("commit")!.Value;
        Assert.Contains($"\"/_/*\":\"https://raw.githubusercontent.com/asyncscopes/asyncscopes/{commit}/*\"", sourceLink, StringComparison.Ordinal);
        Assert.All(documents, document => Assert.StartsWith("/_/", document));
    }

    [Fact]
    public async Task A_fresh_console_app_builds_clean_and_runs_and_the_analyzers_fire_on_a_planted_bug()
    {
        string app = await packed.NewAppAsync("console", "FreshConsole");
        await DotNet.RunAsync(app, "add", "package", "AsyncScopes", "--version", packed.Version);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
            using AsyncScopes;

            int sum = await TaskScope.RunAsync(async scope =>
            {
                Task<int> one = scope.Start(ct => Task.FromResult(1));
                Task<int> two = scope.Start(ct => Task.FromResult(2));
                return await one + await two;
            });
            Console.WriteLine($"The scope's children made {sum}.");
            """);

        string build = await DotNet.RunAsync(app, "build");
        string run = await DotNet.RunAsync(app, "run", "--no-build");

        Assert.True(build.Contains("0 Warning(s)", StringComparison.Ordinal), build);
        Assert.Contains("The scope's children made 3.", run, StringComparison.Ordinal);

        await File.WriteAllTextAsync(Path.Combine(app, "Planted.cs"), PlantedBug);
        string planted = await DotNet.RunAsync(app, "build", "--no-incremental");

        Assert.True(planted.Contains("Planted.cs(5,19): warning ASC0001", StringComparison.Ordinal), planted);
    }

    [Fact]
    public async Task A_fresh_web_app_starts_and_stops_its_scoped_service_pool_and_health_checks_cleanly()
    {
        string app = await packed.NewAppAsync("web", "FreshWeb");
        await DotNet.RunAsync(app, "add", "package", "AsyncScopes.Hosting", "--version", packed.Version);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
            using AsyncScopes;
            using AsyncScopes.Hosting;
            using Microsoft.AspNetCore.Hosting.Server;
            using Microsoft.AspNetCore.Hosting.Server.Features;

            ScopeDiagnostics.LeakTracking = true; // so that OpenScopes lists every scope still open
            var builder = WebApplication.CreateBuilder(args);
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Services.AddSingleton<Ticker>();
            builder.Services.AddHostedService(services => services.GetRequiredService<Ticker>());
            builder.Services.AddAsyncPool("buffers", (_, _) => ValueTask.FromResult(new byte[16])).BindConfiguration("Pools:buffers");
            builder.Services.AddHealthChecks().AddAsyncPoolCheck<byte[]>("buffers");
            var app = builder.Build();
            app.MapHealthChecks("/health");

            await app.StartAsync();
            var ticker = app.Services.GetRequiredService<Ticker>();
            await ticker.Ticking.Task;
            string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            using (var client = new HttpClient())
            {
                Console.WriteLine($"health: {await client.GetStringAsync(address + "/health")}");
            }

            var pool = app.Services.GetRequiredKeyedService<AsyncPool<byte[]>>("buffers");
            await using (var lease = await pool.RentAsync())
            {
                Console.WriteLine($"rented {lease.Value.Length} bytes");
            }

            await app.StopAsync();
            Console.WriteLine($"stopped: ticker ended {ticker.Ended}, still open scopes {ScopeDiagnostics.OpenScopes.Count}");
            await app.DisposeAsync();
            Console.WriteLine($"disposed: pool items destroyed {pool.Statistics.Destroyed} of {pool.Statistics.Created}");

            sealed class Ticker(ILogger<Ticker> logger) : ScopedBackgroundService(logger)
            {
                public TaskCompletionSource Ticking { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

                public bool Ended { get; private set; }

                protected override async Task ExecuteAsync(TaskScope scope)
                {
                    _ = scope.Start(async ct =>
                    {
                        Ticking.TrySetResult();
                        try
                        {
                            await Task.Delay(Timeout.Infinite, scope.Stopping);
                        }
                        catch (OperationCanceledException) when (scope.Stopping.IsCancellationRequested)
                        {
                            Ended = true;
                        }
                    }, "ticker");
                    await Task.CompletedTask;
                }
            }
            """);

        string build = await DotNet.RunAsync(app, "build");
        string run = await DotNet.RunAsync(app, "run", "--no-build", "--no-launch-profile");

        Assert.True(build.Contains("0 Warning(s)", StringComparison.Ordinal), build);
        Assert.True(run.Contains("health: Healthy", StringComparison.Ordinal), run);
        Assert.True(run.Contains("rented 16 bytes", StringComparison.Ordinal), run);
        Assert.True(run.Contains("stopped: ticker ended True, still open scopes 0", StringComparison.Ordinal), run);
        Assert.True(run.Contains("disposed: pool items destroyed 1 of 1", StringComparison.Ordinal), run);

        // The library's analyzers come with the hosting package.
        await File.WriteAllTextAsync(Path.Combine(app, "Planted.cs"), PlantedBug);
        string planted = await DotNet.RunAsync(app, "build", "--no-incremental");
        Assert.True(planted.Contains("Planted.cs(5,19): warning ASC0001", StringComparison.Ordinal), planted);
    }

    // A file stream disposed synchronously in async code (ASC0001), at line 5, column 19.
    private const string PlantedBug = """
        static class Planted
        {
            public static async Task WriteAsync(string path)
            {
                using var file = new FileStream(path, FileMode.Create);
                await file.WriteAsync(new byte[] { 1 });
            }
        }
        """;

    private static XName Name(string local) => XName.Get(local, "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd");

    private XElement Nuspec(string id)
    {
        using ZipArchive package = ZipFile.OpenRead(Path.Combine(packed.Feed, $"{id}.{packed.Version}.nupkg"));
        using Stream nuspec = package.GetEntry($"{id}.nuspec")!.Open();
        return XDocument.Load(nuspec).Root!.Element(Name("metadata"))!;
    }
}
