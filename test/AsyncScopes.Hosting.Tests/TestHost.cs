using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace AsyncScopes.Hosting.Tests;

/// <summary>What the tests share: a bare host builder with given settings, and gates.</summary>
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

    /// <summary>Completes when <paramref name="token"/> is cancelled.</summary>
    public static async Task WhenCancelled(CancellationToken token)
    {
        var cancelled = NewGate();
        using (token.Register(() => cancelled.TrySetResult()))
        {
            await cancelled.Task;
        }
    }
}
