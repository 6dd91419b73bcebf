using Chat.Tests.Support;
using Microsoft.Extensions.Options;

namespace Chat.Tests.Postgres;

public sealed class PostgresSettingsTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Theory]
    [InlineData("Oracle", null, "Database:Provider must be Sqlite or Postgres.")]
    [InlineData("Postgres", null, "Database:ConnectionString is required when Database:Provider is Postgres")]
    [InlineData("postgres", "Host=127.0.0.1;Frobnicate=1", "Database:ConnectionString is not a PostgreSQL connection string")]
    [InlineData("Postgres", "Database=chat;Username=chat", "Database:ConnectionString must name the server: Host=...")]
    public async Task A_bad_database_setting_stops_the_start_with_a_message_that_names_it(string provider, string? connectionString, string says)
    {
        string[] settings = connectionString is null
            ? [$"Database:Provider={provider}"]
            : [$"Database:Provider={provider}", $"Database:ConnectionString={connectionString}"];
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ChatServer.StartAsync(_directory.Path, settings: settings));
        Assert.Contains(says, error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory.Path, "chat.db"))); // nothing was opened
    }

    public void Dispose() => _directory.Dispose();
}
