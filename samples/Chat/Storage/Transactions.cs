using System.Data.Common;
using AsyncScopes;

namespace Chat.Storage;

/// <summary>The outcome-aware transaction: commits when the block completed, rolls back when it threw.</summary>
internal static class Transactions
{
    /// <summary>
    /// A manager that begins a transaction on <paramref name="connection"/>. Its exit commits when the body completed
    /// and rolls back when it threw (cancellation included), and never suppresses: the caller sees the body's exception.
    /// A failed commit is the exit's exception; a failed rollback is combined with the body's by
    /// <see cref="ScopeExitException"/>.
    /// </summary>
    public static IAsyncContextManager<DbTransaction> Begin(DbConnection connection) =>
        AsyncContext.Create(
            connection.BeginTransactionAsync,
            static async (DbTransaction transaction, Exception? exception) =>
            {
                await using (transaction.ConfigureAwait(false))
                {
                    // Not the caller's token: a cancelled caller still gets its transaction ended.
                    if (exception is null)
                    {
                        await transaction.CommitAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                    else
                    {
                        await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                }

                return false;
            });
}
