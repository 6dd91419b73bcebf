namespace Chat.Storage;

/// <summary>Where messages are stored: section <c>Database</c> of the configuration.</summary>
internal sealed class DatabaseOptions
{
    public const string Section = "Database";

    /// <summary>The value of <see cref="Provider"/> for an SQLite file, the default: one node.</summary>
    public const string Sqlite = "Sqlite";

    /// <summary>The value of <see cref="Provider"/> for a PostgreSQL database, which several nodes may share.</summary>
    public const string Postgres = "Postgres";

    /// <summary><see cref="Sqlite"/> (the file at <see cref="Path"/>) or <see cref="Postgres"/> (the database of
    /// <see cref="ConnectionString"/>); case does not matter.</summary>
    public string Provider { get; set; } = Sqlite;

    /// <summary>The SQLite file, created on first start; relative paths are relative to the working directory.</summary>
    public string Path { get; set; } = "chat.db";

    /// <summary>The PostgreSQL connection string (<c>Host=...;Database=...;Username=...;Password=...</c>); required
    /// with <see cref="Postgres"/>, unused with <see cref="Sqlite"/>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Read-only connections kept for history queries (the writer is always one connection).</summary>
    public int Readers { get; set; } = 4;

    /// <summary>How long a write waits for the writer connection before it fails with a timeout.</summary>
    public TimeSpan WriterAcquireTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>True when <see cref="Provider"/> names PostgreSQL.</summary>
    public bool IsPostgres => string.Equals(Provider, Postgres, StringComparison.OrdinalIgnoreCase);

    public IEnumerable<string> Validate()
    {
        if (!IsPostgres && !string.Equals(Provider, Sqlite, StringComparison.OrdinalIgnoreCase))
        {
            yield return $"Database:Provider must be {Sqlite} or {Postgres}.";
        }
        else if (IsPostgres && PostgresProvider.CheckConnectionString(ConnectionString) is { } connectionStringError)
        {
            yield return connectionStringError;
        }
        else if (!IsPostgres && string.IsNullOrWhiteSpace(Path))
        {
            yield return "Database:Path must name a file.";
        }

        if (Readers is < 1 or > 64)
        {
            yield return "Database:Readers must be between 1 and 64.";
        }

        if (WriterAcquireTimeout <= TimeSpan.Zero)
        {
            yield return "Database:WriterAcquireTimeout must be positive.";
        }
    }
}
