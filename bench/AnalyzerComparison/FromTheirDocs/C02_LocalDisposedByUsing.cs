// correct: a stream in a synchronous method declared with using (the fix CA2000 documents)
using System.IO;

static class Exports
{
    public static long Size(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read);
        return file.Length;
    }
}
