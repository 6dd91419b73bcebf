// correct: a permit taken before the try whose finally releases it
using System.Threading;
using System.Threading.Tasks;

sealed class Outbox
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task SendAsync(System.Func<Task> send, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            await send();
        }
        finally
        {
            _gate.Release();
        }
    }
}
