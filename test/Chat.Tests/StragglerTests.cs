using System.Data.Common;
using System.Net.WebSockets;
using AsyncScopes.Hosting;
using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests;

/// <summary>The second phase of a stop: a connection that ignores cancellation is named in the log, and awaited.</summary>
public sealed class StragglerTests : ServiceTest
{
    // The test starts its own server, with its own settings.
    public override Task InitializeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_connection_that_will_not_close_is_logged_by_name_as_a_straggler_once_and_still_awaited()
    {
        TimeSpan stragglerTimeout = new HostedTaskScopeOptions().StragglerTimeout; // the service keeps the default
        var hook = new HangingHook("hang");
        ChatServer server = await StartServerAsync(
            hook: hook,
            settings: ["Logging:LogLevel:AsyncScopes.Hosting.HostedTaskScope=Warning"]);
        await using ChatClient stuck = await server.ConnectAsync("lobby", "stuck");
        await stuck.SendAsync("hang");
        await hook.Entered.WaitAsync(ChatServer.Patience); // its receive loop waits in a write that ignores cancellation

        // The first phase: asked to close, the connection cannot, as its receive loop never reads the answer.
        using var shutdownTimeout = new CancellationTokenSource();
        Task stopping = server.StopAsync(shutdownTimeout.Token);
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, await stuck.WaitClosedAsync());

        // The second phase: aborted when the host's shutdown timeout has passed; reported once the straggler timeout
        // has passed too.
        int timers = server.Time.TimersCreatedCount(stragglerTimeout);
        await shutdownTimeout.CancelAsync();
        await server.Time.TimersCreated(stragglerTimeout, timers + 1).WaitAsync(ChatServer.Patience); // the straggler watch
        server.Time.Advance(stragglerTimeout - TimeSpan.FromTicks(1));
        Assert.DoesNotContain(server.Logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
        server.Time.Advance(TimeSpan.FromTicks(1));
        server.Time.Advance(stragglerTimeout * 3);

        string report = Assert.Single(server.Logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
        Assert.StartsWith("Warning AsyncScopes.Hosting.HostedTaskScope: Connection of stuck in lobby of chat-connections still runs 00:00:05 after it was cancelled", report, StringComparison.Ordinal);
        Assert.False(stopping.IsCompleted); // a straggler is awaited, not abandoned
        hook.Release();
        await stopping.WaitAsync(ChatServer.Patience);
        Assert.Equal(0, server.Service.Hub.Count);
    }

    /// <summary>Holds the transaction of a message with a given text until released, deaf to cancellation.</summary>
    private sealed class HangingHook(string text) : IMessageWriteHook
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => _entered.Task;

        public void Release() => _released.TrySetResult();

        public async ValueTask OnWrittenAsync(StoredMessage message, DbTransaction transaction, CancellationToken cancellationToken)
        {
            if (message.Text == text)
            {
                _entered.TrySetResult();
                await _released.Task;
            }
        }
    }
}
