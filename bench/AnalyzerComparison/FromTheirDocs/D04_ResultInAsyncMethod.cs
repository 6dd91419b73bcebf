// bug: blocking on a task inside an async method (the pattern of VSTHRD002, VSTHRD103, MA0042, AsyncFixer02)
using System.Net.Http;
using System.Threading.Tasks;

sealed class AvatarClient(HttpClient http)
{
    public async Task<int> SizeAsync(string url)
    {
        var bytes = http.GetByteArrayAsync(url).Result;
        await Task.Yield();
        return bytes.Length;
    }
}
