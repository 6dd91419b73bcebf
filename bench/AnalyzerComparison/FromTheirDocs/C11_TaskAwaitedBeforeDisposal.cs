// correct: the task that uses the file is awaited before the file is disposed (the fix CA2025 documents)
using System.IO;
using System.Threading.Tasks;

static class Upload
{
    public static async Task StoreAsync(string path, byte[] data)
    {
        await using var file = File.Create(path);
        await Task.Run(() => file.Write(data, 0, data.Length));
    }
}
