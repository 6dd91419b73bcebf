// bug: a synchronous read of a socket stream inside an async method (the pattern of CA1849, VSTHRD103, MA0042)
using System.Net.Sockets;
using System.Threading.Tasks;

sealed class FrameReader(NetworkStream stream)
{
    public async Task<int> ReadHeaderAsync(byte[] header)
    {
        var read = stream.Read(header, 0, header.Length);
        await stream.FlushAsync();
        return read;
    }
}
