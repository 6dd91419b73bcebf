// bug: a field given a new socket without disposing the old one (the pattern of IDISP003)
using System;
using System.Net.WebSockets;

public sealed class Feed : IDisposable
{
    private ClientWebSocket _socket = new();

    public void Reset()
    {
        _socket = new ClientWebSocket();
    }

    public void Dispose() => _socket.Dispose();
}
