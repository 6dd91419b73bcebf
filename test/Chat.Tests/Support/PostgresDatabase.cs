using Npgsql;

namespace Chat.Tests.Support;

/// <summary>
/// A database of its own on the PostgreSQL server the tests are given in <c>CHAT_TEST_POSTGRES</c> (which
/// <c>./test.sh</c> sets, for a throwaway server it starts), dropped on disposal.
/// </summary>
internal sealed class PostgresDatabase : IAsyncDisposable
{
    /// <summary>The environment variable that holds the connection string of the tests' server.</summary>
    public const string ServerVariable = "CHAT_TEST_POSTGRES";

    private readonly string _server;

    private PostgresDatabase(string server, string name)
    {
        _server = server;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(server) { Database = name, Pooling = false }.ConnectionString;
    }

    public string Name { get; }

    /// <summary>The database's connection string, as the service's setting <c>Database:ConnectionString</c>.</summary>
    public string ConnectionString { get; }

    /// <summary>Creates an empty database; fails, saying how to run the tests, when no server was given.</summary>
    public static async Task<PostgresDatabase> CreateAsync()
    {
        string? server = Environment.GetEnvironmentVariable(ServerVariable);
        if (string.IsNullOrWhiteSpace(server))
        {
            throw new InvalidOperationException(
                $"{ServerVariable} is not set: this test needs a PostgreSQL server. Run the tests with ./test.sh, which " +
                $"starts a throwaway one, or set {ServerVariable} to the connection string of a server where the tests " +
                "may create and drop databases.");
        }

        var database = new PostgresDatabase(server, $"chat_test_{Guid.NewGuid():N}");
        try
        {
            await database.OnServerAsync($"CREATE DATABASE {database.Name}");
        }
        catch
        {
            // A CREATE that failed on the client's side may still have run on the server's.
            await database.DisposeAsync();
            throw;
        }

        return database;
    }

    /// <summary>Runs <paramref name="sql"/> in the database and returns the first column of the first row.</summary>
    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Runs <paramref name="sql"/> in the database (a change of its schema, say).</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Ends the server process <paramref name="processId"/>, as an administrator or a failing server would:
    /// its client finds the connection closed.</summary>
    public async Task TerminateAsync(int processId) =>
        Assert.True(await ScalarAsync<bool>($"SELECT pg_terminate_backend({processId})"), $"No server process {processId}.");

    public async ValueTask DisposeAsync() => await OnServerAsync($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)");

    private async Task OnServerAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_server) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
