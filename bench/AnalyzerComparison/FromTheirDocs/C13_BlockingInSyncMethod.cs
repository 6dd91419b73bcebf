// correct for the async rules: a synchronous method that sleeps and reads synchronously is not async code
using System.IO;
using System.Threading;

static class Polling
{
    public static int ReadWhenReady(Stream stream, byte[] buffer)
    {
        while (!stream.CanRead)
        {
            Thread.Sleep(10);
        }

        return stream.Read(buffer, 0, buffer.Length);
    }
}
