using Chat.Storage;
using Microsoft.Data.Sqlite;

namespace Chat.Tests.Support;

/// <summary>Reads a stopped service's database file directly, as it is on disk, or changes it as an earlier version
/// of the service left it.</summary>
internal static class DatabaseFile
{
    public static async Task<OutboxCounts> OutboxAsync(string directory) =>
        await QueryAsync(directory, async connection =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = """
                SELECT COUNT(*) FILTER (WHERE state = 'pending'), COUNT(*) FILTER (WHERE state = 'delivered'),
                       COUNT(*) FILTER (WHERE state = 'failed')
                FROM outbox
                """;
            await using SqliteDataReader reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            return new OutboxCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        });

    /// <summary>Every outbox job as <c>(state, attempts, last_error)</c>, by id.</summary>
    public static async Task<List<(string State, int Attempts, string? LastError)>> OutboxJobsAsync(string directory) =>
        await QueryAsync(directory, async connection =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT state, attempts, last_error FROM outbox ORDER BY id";
            await using SqliteDataReader reader = await command.ExecuteReaderAsync();
            var jobs = new List<(string, int, string?)>();
            while (await reader.ReadAsync())
            {
                jobs.Add((reader.GetString(0), reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
            }

            return jobs;
        });

    /// <summary>Every outbox job's stored trace context (<c>trace_parent</c>), by id.</summary>
    public static async Task<List<string?>> OutboxTraceParentsAsync(string directory) =>
        await QueryAsync(directory, async connection =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT trace_parent FROM outbox ORDER BY id";
            await using SqliteDataReader reader = await command.ExecuteReaderAsync();
            var parents = new List<string?>();
            while (await reader.ReadAsync())
            {
                parents.Add(reader.IsDBNull(0) ? null : reader.GetString(0));
            }

            return parents;
        });

    public static async Task<List<string>> MessageTextsAsync(string directory) =>
        await QueryAsync(directory, async connection =>
        {
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT text FROM messages ORDER BY id";
            await using SqliteDataReader reader = await command.ExecuteReaderAsync();
            var texts = new List<string>();
            while (await reader.ReadAsync())
            {
                texts.Add(reader.GetString(0));
            }

            return texts;
        });

    /// <summary>Runs <paramref name="sql"/> on the file (a change of its schema, say).</summary>
    public static async Task ExecuteAsync(string directory, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(directory, "chat.db")};Pooling=False");
        await connection.OpenAsync();
        await using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> QueryAsync<T>(string directory, Func<SqliteConnection, Task<T>> query)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(directory, "chat.db")};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        return await query(connection);
    }
}
