// bug: a ValueTask awaited twice (the pattern of CA2012)
using System.IO;
using System.Threading.Tasks;

static class Reads
{
    public static async Task<int> TwiceAsync(Stream stream, byte[] buffer)
    {
        var read = stream.ReadAsync(buffer);
        var first = await read;
        var second = await read;
        return first + second;
    }
}
