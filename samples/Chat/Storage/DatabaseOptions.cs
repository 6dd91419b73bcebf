namespace Chat.Storage;

/// <summary>Where messages are stored: section <c>Database</c> of the configuration.</summary>
internal sealed class DatabaseOptions
{
    public const string Section = "Database";

    /// <summary>The SQLite file, created on first start; relative paths are relative to the working directory.</summary>
    public string Path { get; set; } = "chat.db";

    /// <summary>Read-only connections kept for history queries (the writer is always one connection).</summary>
    public int Readers { get; set; } = 4;

    /// <summary>How long a write waits for the writer connection before it fails with a timeout.</summary>
    public TimeSpan WriterAcquireTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Path))
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
