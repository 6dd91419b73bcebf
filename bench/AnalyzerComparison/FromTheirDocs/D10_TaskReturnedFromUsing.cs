// bug: a task returned from inside a using (the pattern of IDISP013, VSTHRD107, MA0129, RCS1229)
using System.IO;
using System.Threading.Tasks;

static class Archive
{
    public static Task StoreAsync(string path, byte[] data)
    {
        using var file = File.Create(path);
        return file.WriteAsync(data, 0, data.Length);
    }
}
