// correct: the class that creates a timer is disposable and disposes it (the fix CA1001 documents)
using System;
using System.Threading;

sealed class Heartbeat : IDisposable
{
    private readonly Timer _timer;

    public Heartbeat(Action beat) => _timer = new Timer(_ => beat(), null, 1000, 1000);

    public void Dispose() => _timer.Dispose();
}
