// bug: a Dispose that forgets a field the class created (the pattern of CA2213, IDISP002)
using System;
using System.Threading;

sealed class Session : IDisposable
{
    private readonly CancellationTokenSource _closing = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    public CancellationToken Closing => _closing.Token;

    public void Dispose() => _sendLock.Dispose();
}
