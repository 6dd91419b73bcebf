using System.Data.Common;
using System.Net.WebSockets;
using Chat.Realtime;
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
        TimeSpan grace = TimeSpan.FromSeconds(67); // the shutdown timeout: no other timer of the service has it
        var hook = new HangingHook("hang");
        ChatServer server = await StartServerAsync(
            hook: hook,
            settings: [$"Chat:ShutdownTimeout={grace}", "Logging:LogLevel:Chat.Realtime.ConnectionHub=Warning"]);
        await using ChatClient stuck = await server.ConnectAsync("lobby", "stuck");
        await stuck.SendAsync("hang");
        await hook.Entered.WaitAsync(ChatServer.Patience); // its receive loop waits in a write that ignores cancellation

        // The first phase: asked to close, the connection cannot, as its receive loop never reads the answer.
        Task stopping = server.StopAsync();
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, await stuck.WaitClosedAsync());
        await server.Time.TimersCreated(grace, 1).WaitAsync(ChatServer.Patience);

        // The second phase: aborted at the end of the grace; reported once the straggler timeout has passed too.
        server.Time.Advance(grace);
        server.Time.Advance(ConnectionHub.StragglerTimeout - TimeSpan.FromTicks(1));
        Assert.DoesNotContain(server.Logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
        server.Time.Advance(TimeSpan.FromTicks(1));
        server.Time.Advance(ConnectionHub.StragglerTimeout * 3);

        string report = Assert.Single(server.Logs.Lines, line => line.Contains("still runs", StringComparison.Ordinal));
        Assert.StartsWith("Warning Chat.Realtime.ConnectionHub: Connection of stuck in lobby still runs 00:00:05 after it was aborted", report, StringComparison.Ordinal);
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
