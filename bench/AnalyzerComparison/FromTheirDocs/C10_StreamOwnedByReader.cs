// correct: the reader owns the stream it was given and disposes it
using System.IO;

static class Lines
{
    public static string? First(string path)
    {
        using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read));
        return reader.ReadLine();
    }
}
