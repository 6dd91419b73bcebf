// correct: a task returned as it is, with nothing disposed under it
using System.IO;
using System.Threading.Tasks;

static class Archive
{
    public static Task StoreAsync(string path, byte[] data) => File.WriteAllBytesAsync(path, data);
}
