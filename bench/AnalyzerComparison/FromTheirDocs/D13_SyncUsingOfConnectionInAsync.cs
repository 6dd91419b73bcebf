// bug: a connection disposed synchronously in an async method (the pattern of RCS1261)
using System;
using System.Data.Common;
using System.Threading.Tasks;

sealed class Users(Func<DbConnection> connect)
{
    public async Task<object?> CountAsync()
    {
        using var connection = connect();
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM users";
        return await command.ExecuteScalarAsync();
    }
}
