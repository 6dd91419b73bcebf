namespace Packages.Tests;

/// <summary>
/// The two packages packed once for the test class from this repository's sources, into a folder that serves as a
/// package feed. The build goes to an artifacts folder of its own, so that it shares no <c>bin</c> or <c>obj</c> with
/// the test run it is part of; that folder is inside the repository (ignored by git) as a normal build's <c>obj</c>
/// is, so that the sources it generates map to the repository in the symbols as they would.
/// </summary>
public sealed class PackedFeed : IAsyncLifetime
{
    public string Root { get; } = Directory.CreateTempSubdirectory("asyncscopes-packages-").FullName;

    public string Feed => Path.Combine(Root, "feed");

    public static string Repository { get; } = FindRepository();

    /// <summary>A version of this run's own: a package of the same id and version cached by an earlier run (in a
    /// machine's global packages folder, wherever <c>NUGET_PACKAGES</c> points) can never stand in for it.</summary>
    public string Version { get; } = "1.0.0-test." + Guid.NewGuid().ToString("N")[..12];

    private readonly string _artifacts = Path.Combine(Repository, "artifacts", "package-tests", Guid.NewGuid().ToString("N"));

    public async Task InitializeAsync()
    {
        foreach (string project in new[] { "src/AsyncScopes/AsyncScopes.csproj", "src/AsyncScopes.Hosting/AsyncScopes.Hosting.csproj" })
        {
            await DotNet.RunAsync(
                Repository,
                "pack",
                project,
                "--configuration",
                "Release",
                "--output",
                Feed,
                "--artifacts-path",
                _artifacts,
                "-p:ContinuousIntegrationBuild=true",
                $"-p:Version={Version}");
        }
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Root, recursive: true);
        Directory.Delete(_artifacts, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>Creates a fresh app from the SDK's template <paramref name="template"/> in a folder of its own, outside
    /// the repository (none of its build settings apply), that restores from the feed first and keeps its packages
    /// apart from the machine's cache (where an older build of the packages may sit).</summary>
    public async Task<string> NewAppAsync(string template, string name)
    {
        string directory = Path.Combine(Root, name);
        await DotNet.RunAsync(Root, "new", template, "--output", directory, "--name", name, "--no-restore");
        await File.WriteAllTextAsync(Path.Combine(directory, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(Root, "packages")}" />
              </config>
              <packageSources>
                <add key="local" value="{Feed}" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="local">
                  <package pattern="AsyncScopes" />
                  <package pattern="AsyncScopes.*" />
                </packageSource>
                <packageSource key="nuget.org">
                  <package pattern="*" />
                </packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        return directory;
    }

    private static string FindRepository()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "AsyncScopes.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository (AsyncScopes.slnx) is not above " + AppContext.BaseDirectory);
    }
}
