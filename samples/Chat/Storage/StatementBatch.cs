using System.Data.Common;

namespace Chat.Storage;

/// <summary>
/// Statements of one transaction, sent together: in one round trip where the driver batches statements
/// (<see cref="DbConnection.CanCreateBatch"/>, as Npgsql does), otherwise one after another on one command per distinct
/// SQL, which the driver compiles once and runs again with each statement's values (Microsoft.Data.Sqlite keeps a
/// command's compiled statements while its text stays the same). Each run takes the statements added since the last.
/// </summary>
/// <remarks>
/// <para>The batch writes each message with the same few statements: a round trip per statement on PostgreSQL, or
/// parsing the same SQL again on SQLite, would cost every message more than writing it does.</para>
/// <para>Every statement returns rows (<c>RETURNING</c>), even none: each one then has its own result, in order, so
/// the one that failed is known by how many results came before it, without the driver keeping the failed statement,
/// and its values, on the exception. That holds where the driver reports a statement's error as the reader reaches
/// that statement, and the server runs none after it (Npgsql, which sends one batch without error barriers;
/// Microsoft.Data.Sqlite, one statement at a time).</para>
/// </remarks>
internal sealed class StatementBatch : IAsyncDisposable
{
    private readonly DbConnection _connection;
    private readonly DbTransaction _transaction;
    private readonly List<(string Sql, SqlValue[] Values)> _pending = [];
    private readonly Dictionary<string, DbCommand> _commands = new(StringComparer.Ordinal);

    public StatementBatch(DbConnection connection, DbTransaction transaction) =>
        (_connection, _transaction) = (connection, transaction);

    /// <summary>
    /// The position, among the statements of the last run, of the one that was running when the run threw a
    /// <see cref="DbException"/>; -1 when the run did not fail so. It may be a failure of the database rather than of
    /// that statement (a lost connection, a full disk), which the caller tells apart.
    /// </summary>
    public int Failed { get; private set; } = -1;

    /// <summary>Adds a statement, which returns rows, to the next run. Statements with the same SQL take the same
    /// parameters, in the same order.</summary>
    public void Add(string sql, params SqlValue[] values) => _pending.Add((sql, values));

    /// <summary>Runs the statements added, in order, each of which returns one row, and returns the first column of
    /// each one's row.</summary>
    public Task<long[]> ReadIdsAsync(CancellationToken cancellationToken) => RunAsync(ids: true, cancellationToken);

    /// <summary>Runs the statements added, in order, and returns how many rows each one returned.</summary>
    public Task<long[]> CountRowsAsync(CancellationToken cancellationToken) => RunAsync(ids: false, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (DbCommand command in _commands.Values)
        {
            await command.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<long[]> RunAsync(bool ids, CancellationToken cancellationToken)
    {
        Failed = -1;
        var results = new long[_pending.Count];
        int running = 0;
        try
        {
            if (_connection.CanCreateBatch)
            {
                await using DbBatch batch = CreateBatch();
                await using DbDataReader reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                do
                {
                    if (running == results.Length)
                    {
                        throw new InvalidOperationException("The batch returned more results than it has statements.");
                    }

                    results[running] = await ReadResultAsync(reader, ids, cancellationToken).ConfigureAwait(false);
                    running++;
                }
                while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));

                if (running != results.Length)
                {
                    throw new InvalidOperationException($"The batch returned {running} results for {results.Length} statements: each must return rows.");
                }
            }
            else
            {
                for (; running < results.Length; running++)
                {
                    DbCommand command = CommandFor(_pending[running]);
                    await using DbDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    results[running] = await ReadResultAsync(reader, ids, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (DbException)
        {
            Failed = running < results.Length ? running : -1;
            throw;
        }
        finally
        {
            _pending.Clear();
        }

        return results;
    }

    // One statement's result: the id its one row holds, or how many rows it returned.
    private static async Task<long> ReadResultAsync(DbDataReader reader, bool ids, CancellationToken cancellationToken)
    {
        long rows = 0;
        long id = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (rows++ == 0 && ids)
            {
                id = reader.GetInt64(0);
            }
        }

        return !ids ? rows : rows == 1 ? id : throw new InvalidOperationException($"A statement returned {rows} rows where one id was expected.");
    }

    private DbBatch CreateBatch()
    {
        DbBatch batch = _connection.CreateBatch();
        batch.Transaction = _transaction;
        foreach ((string sql, SqlValue[] values) in _pending)
        {
            DbBatchCommand command = batch.CreateBatchCommand();
            command.CommandText = sql;
            foreach (SqlValue value in values)
            {
                DbParameter parameter = command.CreateParameter();
                value.ApplyTo(parameter);
                command.Parameters.Add(parameter);
            }

            batch.BatchCommands.Add(command);
        }

        return batch;
    }

    // The command for a statement's SQL, compiled the first time it runs; its parameters take the statement's values.
    private DbCommand CommandFor((string Sql, SqlValue[] Values) statement)
    {
        if (_commands.TryGetValue(statement.Sql, out DbCommand? command))
        {
            for (int j = 0; j < statement.Values.Length; j++)
            {
                statement.Values[j].ApplyTo(command.Parameters[j]);
            }

            return command;
        }

        command = Sql.Command(_connection, _transaction, statement.Sql);
        _commands.Add(statement.Sql, command);
        foreach (SqlValue value in statement.Values)
        {
            Sql.Bind(command, value);
        }

        return command;
    }
}
