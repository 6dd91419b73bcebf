// correct: the old socket is disposed before the field is given a new one (the fix IDISP003 documents)
using System;
using System.Net.WebSockets;

public sealed class Feed : IDisposable
{
    private ClientWebSocket _socket = new();

    public void Reset()
    {
        _socket.Dispose();
        _socket = new ClientWebSocket();
    }

    public void Dispose() => _socket.Dispose();
}
