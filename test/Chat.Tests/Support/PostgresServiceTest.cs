namespace Chat.Tests.Support;

/// <summary>A <see cref="ServiceTest"/> whose servers share a fresh PostgreSQL database of the test's own: each server
/// started on it is one node.</summary>
public abstract class PostgresServiceTest : ServiceTest
{
    internal PostgresDatabase Database { get; private set; } = null!;

    internal override IReadOnlyList<string> DatabaseSettings =>
        ["Database:Provider=Postgres", $"Database:ConnectionString={Database.ConnectionString}"];

    /// <summary>Whether <see cref="InitializeAsync"/> starts <see cref="ServiceTest.Server"/>; a test that starts its
    /// servers with settings of its own says no.</summary>
    private protected virtual bool StartsServer => true;

    public override async Task InitializeAsync()
    {
        // Owned first, so dropped last: after every server of the test has stopped.
        Database = Own(await PostgresDatabase.CreateAsync());
        if (StartsServer)
        {
            await base.InitializeAsync();
        }
    }
}
