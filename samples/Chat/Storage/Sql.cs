using System.Data;
using System.Data.Common;
using System.Diagnostics;

namespace Chat.Storage;

/// <summary>Commands and parameters, the same way on every database.</summary>
internal static class Sql
{
    public static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql)
    {
        DbCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    public static void Bind(DbCommand command, string name, object value) => Bind(command, new SqlValue(name, value));

    public static void Bind(DbCommand command, string name, object? value, DbType type) => Bind(command, new SqlValue(name, value, type));

    public static void Bind(DbCommand command, SqlValue value)
    {
        DbParameter parameter = command.CreateParameter();
        value.ApplyTo(parameter);
        command.Parameters.Add(parameter);
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
