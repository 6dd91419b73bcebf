// correct: a synchronous method that starts work keeps its task for the caller to observe (the VSTHRD110 fix)
using System.Threading;
using System.Threading.Tasks;

sealed class Presence
{
    public Task MarkOnline(string user) => SaveAsync(user, CancellationToken.None);

    private static Task SaveAsync(string user, CancellationToken ct) => Task.Delay(10, ct);
}
