using Chat.Tests.Support;
using Microsoft.Extensions.Options;

namespace Chat.Tests.Postgres;

public sealed class PostgresSettingsTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Theory]
    [InlineData("Database:Provider must be Sqlite or Postgres.", "Database:Provider=Oracle")]
    [InlineData("Database:ConnectionString is required when Database:Provider is Postgres", "Database:Provider=Postgres")]
    [InlineData(
        "Database:ConnectionString is not a PostgreSQL connection string",
        "Database:Provider=postgres",
        "Database:ConnectionString=Host=127.0.0.1;Frobnicate=1")]
    [InlineData(
        "Database:ConnectionString must name the server: Host=...",
        "Database:Provider=Postgres",
        "Database:ConnectionString=Database=chat;Username=chat")]
    [InlineData("Webhooks:ClaimGrace must be positive.", "Webhooks:ClaimGrace=00:00:00")]
    public async Task A_bad_setting_of_a_shared_database_stops_the_start_with_a_message_that_names_it(string says, params string[] settings)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ChatServer.StartAsync(_directory.Path, settings: settings));
        Assert.Contains(says, error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory.Path, "chat.db"))); // nothing was opened
    }

    public void Dispose() => _directory.Dispose();
}
