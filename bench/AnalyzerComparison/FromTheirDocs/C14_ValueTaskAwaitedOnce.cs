// correct: each ValueTask awaited once (the fix CA2012 documents)
using System.IO;
using System.Threading.Tasks;

static class Reads
{
    public static async Task<int> TwiceAsync(Stream stream, byte[] buffer)
    {
        var first = await stream.ReadAsync(buffer);
        var second = await stream.ReadAsync(buffer);
        return first + second;
    }
}
