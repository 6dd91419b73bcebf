using System.Data.Common;
using AsyncScopes;
using Microsoft.Extensions.Options;

namespace Chat.Storage;

/// <summary>The database in the container: its provider and its two connection pools, which the container owns and
/// disposes (the pools drain, then the provider closes).</summary>
internal static class StorageServices
{
    /// <summary>The key of the writer pool: one connection, so that writers queue first-in first-out instead of
    /// failing when the database is busy.</summary>
    public const string Writer = "chat-writer";

    /// <summary>The key of the pool of read-only connections, which never wait for the writer.</summary>
    public const string Readers = "chat-readers";

    /// <summary>Registers the provider of the configured database and its pools, with the readers' health check
    /// (<c>pool:chat-readers</c>: degraded while requests wait for a read connection). The writer has none: its
    /// writers queue by design (and the <c>database</c> check, which writes, waits among them); a write that waits
    /// too long fails, which that check reports.</summary>
    public static IServiceCollection AddChatStorage(this IServiceCollection services)
    {
        services.AddSingleton(provider => DatabaseProvider.Create(provider.GetRequiredService<IOptions<DatabaseOptions>>().Value));
        services.AddAsyncPool<DbConnection>(Writer, (provider, ct) => provider.GetRequiredService<DatabaseProvider>().OpenAsync(writer: true, ct))
            .Configure<DatabaseProvider, IOptions<DatabaseOptions>>((pool, database, settings) =>
            {
                ConfigureConnections(pool, database);
                pool.MaxSize = 1;
                pool.AcquireTimeout = settings.Value.WriterAcquireTimeout;
            });
        services.AddAsyncPool<DbConnection>(Readers, (provider, ct) => provider.GetRequiredService<DatabaseProvider>().OpenAsync(writer: false, ct))
            .Configure<DatabaseProvider, IOptions<DatabaseOptions>>((pool, database, settings) =>
            {
                ConfigureConnections(pool, database);
                pool.MaxSize = settings.Value.Readers;
                pool.IdleTimeout = TimeSpan.FromMinutes(5);
            });
        services.AddHealthChecks().AddAsyncPoolCheck<DbConnection>(Readers);
        return services;
    }

    // What both pools do with a connection: check an idle one before lending it, destroy one a connection fault broke.
    private static void ConfigureConnections(AsyncPoolOptions<DbConnection> pool, DatabaseProvider database)
    {
        pool.Validate = database.IsUsableAsync;
        pool.DiscardOn = database.IsConnectionFault;
        pool.DrainTimeout = TimeSpan.FromSeconds(5);
    }
}
