namespace Chat.Tests.Support;

/// <summary>A fresh folder under the system's temp folder, deleted with everything in it on disposal.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("chat-tests-").FullName;
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open elsewhere: the system's temp cleaning takes it.
        }
    }
}
