// bug: a created disposable dropped at once (the pattern of IDISP004, CA2000)
using System.Net.Sockets;

static class Probe
{
    public static void Touch(string host) => new TcpClient(host, 80);
}
