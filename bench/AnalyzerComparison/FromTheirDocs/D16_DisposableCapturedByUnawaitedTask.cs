// bug: a disposable handed to a task nobody awaits, then disposed under it (the pattern of CA2025)
using System.IO;
using System.Threading.Tasks;

static class Upload
{
    public static void Start(string path, byte[] data)
    {
        using var file = File.Create(path);
        Task.Run(() => file.Write(data, 0, data.Length));
    }
}
