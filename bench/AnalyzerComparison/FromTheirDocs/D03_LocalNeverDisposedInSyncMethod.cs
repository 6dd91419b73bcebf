// bug: a stream created into a local and never disposed (the pattern of CA2000 and IDISP001)
using System.IO;

static class Exports
{
    public static long Size(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read);
        return file.Length;
    }
}
