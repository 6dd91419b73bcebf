using Npgsql;

namespace Chat.Load;

/// <summary>A fresh database on a PostgreSQL server, for one run of the service, dropped after it.</summary>
internal sealed class PostgresDatabase : IAsyncDisposable
{
    private readonly string _server;
    private readonly string _name;

    private PostgresDatabase(string server, string name, string connectionString) =>
        (_server, _name, ConnectionString) = (server, name, connectionString);

    /// <summary>The new database's connection string.</summary>
    public string ConnectionString { get; }

    /// <param name="server">A connection string to the server, whose user may create databases.</param>
    public static async Task<PostgresDatabase> CreateAsync(string server)
    {
        string name = $"chat_load_{Guid.NewGuid():N}";
        await ExecuteAsync(server, $"CREATE DATABASE {name}");
        return new PostgresDatabase(server, name, new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString);
    }

    public async ValueTask DisposeAsync() => await ExecuteAsync(_server, $"DROP DATABASE IF EXISTS {_name} WITH (FORCE)");

    private static async Task ExecuteAsync(string server, string sql)
    {
        await using var connection = new NpgsqlConnection(server);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
