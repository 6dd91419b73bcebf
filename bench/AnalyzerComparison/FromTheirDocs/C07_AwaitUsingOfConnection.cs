// correct: a connection in an async method declared with await using (the fix RCS1261 documents)
using System;
using System.Data.Common;
using System.Threading.Tasks;

sealed class Users(Func<DbConnection> connect)
{
    public async Task<object?> CountAsync()
    {
        await using var connection = connect();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM users";
        return await command.ExecuteScalarAsync();
    }
}
