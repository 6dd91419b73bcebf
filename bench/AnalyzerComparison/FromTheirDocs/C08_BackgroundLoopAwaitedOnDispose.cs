// correct: a background loop whose task is kept and awaited when its owner is disposed
using System;
using System.Threading;
using System.Threading.Tasks;

sealed class Sweeper : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public Sweeper(Func<CancellationToken, Task> sweep) => _loop = RunAsync(sweep, _stop.Token);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private static async Task RunAsync(Func<CancellationToken, Task> sweep, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await sweep(ct);
            await Task.Delay(1000, ct);
        }
    }
}
