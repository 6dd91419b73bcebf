// bug: a task started inside a using and not awaited: the resource is disposed under it (the pattern of AsyncFixer04)
using System.IO;

static class Archive
{
    public static void Store(string path, byte[] data)
    {
        using (var file = File.Create(path))
        {
            _ = file.WriteAsync(data, 0, data.Length);
        }
    }
}
