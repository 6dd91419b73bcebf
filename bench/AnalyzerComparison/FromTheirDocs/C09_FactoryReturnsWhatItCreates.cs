// correct: a factory returns the socket it created: the caller owns it
using System.Net.WebSockets;

static class Sockets
{
    public static ClientWebSocket Create()
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = System.TimeSpan.FromSeconds(20);
        return socket;
    }
}
