// bug: Thread.Sleep inside an async method (the pattern of MA0042, VSTHRD103, AsyncFixer02, CA1849)
using System.Threading;
using System.Threading.Tasks;

sealed class RetryingSender
{
    public async Task SendAsync(System.Func<Task<bool>> send)
    {
        while (!await send())
        {
            Thread.Sleep(100);
        }
    }
}
