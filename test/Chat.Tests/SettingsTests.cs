using Chat.Tests.Support;
using Microsoft.Extensions.Options;

namespace Chat.Tests;

public sealed class SettingsTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Theory]
    [InlineData("Chat:MaxFrameBytes=10", "Chat:MaxFrameBytes must be at least 256.")]
    [InlineData("Chat:SilenceTimeout=00:00:01", "Chat:SilenceTimeout at least as long")]
    [InlineData("Chat:ShutdownTimeout=60.00:00:00", "Chat:HeartbeatInterval, Chat:SilenceTimeout, Chat:CloseTimeout and Chat:ShutdownTimeout must be at most a day.")]
    [InlineData("Chat:HeartbeatInterval=2.00:00:00", "must be at most a day.")]
    [InlineData("Database:Readers=0", "Database:Readers must be between 1 and 64.")]
    [InlineData("Webhooks:MaxAttempts=0", "Webhooks:MaxAttempts must be between 1 and 100.")]
    [InlineData("Webhooks:BackoffBase=-00:00:01", "Webhooks:BackoffBase must not be negative")]
    [InlineData("Webhooks:BackoffJitter=1.5", "Webhooks:BackoffJitter must be between 0 and 1.")]
    [InlineData("Webhooks:AllowedNetworks:1=10.0.0.0/33", "Webhooks:AllowedNetworks: '10.0.0.0/33' is not a network")]
    [InlineData("Webhooks:MaxPerRoom=0", "Webhooks:MaxPerRoom must be between 1 and 1000.")]
    [InlineData("Security:AdminApiKey=short", "Security:AdminApiKey must have at least 16 characters")]
    [InlineData("Security:ClientKeys:0=short", "Security:ClientKeys: each key must have at least 16 characters")]
    [InlineData("Webhooks:MaxPerDestination=5", "Webhooks:MaxPerDestination must be between 1 and Webhooks:Workers.")]
    [InlineData("Security:AllowedOrigins:0=https://chat.example.com/path", "Security:AllowedOrigins: 'https://chat.example.com/path' is not an origin")]
    [InlineData("Telemetry:OtlpEndpoint=collector:4317", "Telemetry:OtlpEndpoint must be an absolute http or https URL.")]
    [InlineData("Telemetry:OtlpProtocol=udp", "Telemetry:OtlpProtocol must be grpc or http/protobuf.")]
    public async Task A_bad_setting_stops_the_start_with_a_message_that_names_it(string setting, string says)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ChatServer.StartAsync(_directory.Path, settings: setting));
        Assert.Contains(says, error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory.Path, "chat.db"))); // nothing was opened
    }

    public void Dispose() => _directory.Dispose();
}
