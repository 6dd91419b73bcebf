using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace AsyncScopes.Hosting.Tests;

/// <summary>What the registration tests share: a bare host builder with given settings, and a gate.</summary>
internal static class TestHost
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public static HostApplicationBuilder NewBuilder(Dictionary<string, string?>? settings = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings ?? []);
        return builder;
    }

    public static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
