// bug: a task dropped by a synchronous method (the pattern of VSTHRD110, MA0134, CS4014 outside async code)
using System.Threading;
using System.Threading.Tasks;

sealed class Presence
{
    public void MarkOnline(string user) => SaveAsync(user, CancellationToken.None);

    private static Task SaveAsync(string user, CancellationToken ct) => Task.Delay(10, ct);
}
