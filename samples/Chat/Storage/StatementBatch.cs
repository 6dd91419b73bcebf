using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;

namespace Chat.Storage;

/// <summary>
/// Statements of one transaction, sent together: in one round trip where the driver batches statements
/// (<see cref="DbConnection.CanCreateBatch"/>, as Npgsql does), otherwise one after another on one command per distinct
/// SQL, which the driver compiles once and runs again with each statement's values (Microsoft.Data.Sqlite keeps a
/// command's compiled statements while its text stays the same). Each run takes the statements added since the last.
/// </summary>
/// <remarks>
/// The batch writes each message with the same few statements: a round trip per statement on PostgreSQL, or parsing
/// the same SQL again on SQLite, would cost every message more than writing it does.
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
    /// The position, among the statements of the last run, of the one whose failure the run threw; -1 when the run
    /// did not fail, or its failure was not one statement's (the connection's, a cancellation).
    /// </summary>
    public int Failed { get; private set; } = -1;

    /// <summary>Adds a statement to the next run. Statements with the same SQL take the same parameters, in the
    /// same order.</summary>
    public void Add(string sql, params SqlValue[] values) => _pending.Add((sql, values));

    /// <summary>Runs the statements added, in order, each of which returns one row, and returns the first column of
    /// each one's row.</summary>
    public Task<long[]> ReadScalarsAsync(CancellationToken cancellationToken) => RunAsync(scalars: true, cancellationToken);

    /// <summary>Runs the statements added, in order, and returns how many rows each one changed.</summary>
    public Task<long[]> ExecuteAsync(CancellationToken cancellationToken) => RunAsync(scalars: false, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (DbCommand command in _commands.Values)
        {
            await command.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<long[]> RunAsync(bool scalars, CancellationToken cancellationToken)
    {
        Failed = -1;
        var results = new long[_pending.Count];
        try
        {
            if (_connection.CanCreateBatch)
            {
                await RunTogetherAsync(results, scalars, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await RunEachAsync(results, scalars, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _pending.Clear();
        }

        return results;
    }

    private async Task RunTogetherAsync(long[] results, bool scalars, CancellationToken cancellationToken)
    {
        await using DbBatch batch = _connection.CreateBatch();
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

        try
        {
            if (scalars)
            {
                await using DbDataReader reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                int next = 0;
                do
                {
                    if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        throw new InvalidOperationException($"Statement {next} of the batch returned no row.");
                    }

                    results[next++] = reader.GetInt64(0);
                }
                while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));
                Debug.Assert(next == results.Length, "One result per statement.");
            }
            else
            {
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < results.Length; i++)
                {
                    results[i] = batch.BatchCommands[i].RecordsAffected;
                }
            }
        }
        catch (DbException e) when (e.BatchCommand is not null)
        {
            Failed = batch.BatchCommands.IndexOf(e.BatchCommand);
            throw;
        }
    }

    private async Task RunEachAsync(long[] results, bool scalars, CancellationToken cancellationToken)
    {
        for (int i = 0; i < _pending.Count; i++)
        {
            (string sql, SqlValue[] values) = _pending[i];
            if (_commands.TryGetValue(sql, out DbCommand? command))
            {
                for (int j = 0; j < values.Length; j++)
                {
                    values[j].ApplyTo(command.Parameters[j]);
                }
            }
            else
            {
                command = Sql.Command(_connection, _transaction, sql);
                _commands.Add(sql, command);
                foreach (SqlValue value in values)
                {
                    DbParameter parameter = command.CreateParameter();
                    value.ApplyTo(parameter);
                    command.Parameters.Add(parameter);
                }
            }

            try
            {
                results[i] = scalars
                    ? Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture)
                    : await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException)
            {
                Failed = i;
                throw;
            }
        }
    }
}

/// <summary>A statement's parameter: its name (<c>@room</c>), its value, and its type when the value may be null (a
/// NULL of no type is not one PostgreSQL can always place).</summary>
internal readonly record struct SqlValue(string Name, object? Value, DbType? Type = null)
{
    public void ApplyTo(DbParameter parameter)
    {
        Debug.Assert(parameter.ParameterName.Length == 0 || parameter.ParameterName == Name, "Same SQL, same parameters.");
        parameter.ParameterName = Name;
        if (Type is { } type)
        {
            parameter.DbType = type;
        }

        parameter.Value = Value ?? DBNull.Value;
    }
}
