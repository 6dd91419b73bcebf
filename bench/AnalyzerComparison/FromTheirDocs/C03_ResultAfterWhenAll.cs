// correct: Result of tasks that an awaited WhenAll has completed
using System.Net.Http;
using System.Threading.Tasks;

sealed class AvatarClient(HttpClient http)
{
    public async Task<int> TotalSizeAsync(string first, string second)
    {
        var a = http.GetByteArrayAsync(first);
        var b = http.GetByteArrayAsync(second);
        await Task.WhenAll(a, b);
        return a.Result.Length + b.Result.Length;
    }
}
