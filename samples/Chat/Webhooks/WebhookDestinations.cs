using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Chat.Webhooks;

/// <summary>
/// Where webhooks may send: public addresses only, and never to the service itself. Checked twice: when a webhook is
/// registered (its URL, and the addresses its host name resolves to then) and when each delivery connects (the
/// addresses it resolves to now, so that a name that later resolves to an internal address, DNS rebinding, is refused
/// too).
/// </summary>
/// <remarks>
/// Refused, unless <see cref="WebhookOptions.AllowedNetworks"/> names them: loopback, private (RFC 1918, unique local
/// IPv6), carrier-grade NAT, link-local, unspecified, multicast, broadcast and the other special-purpose IPv4 ranges,
/// with IPv4-mapped IPv6 addresses read as the IPv4 address they carry. Refused whatever the allow-list says: the
/// service's own listening endpoints (an address and port it listens on), which would turn one message into an
/// endless loop of deliveries.
/// </remarks>
internal sealed class WebhookDestinations
{
    /// <summary>The longest webhook URL, in characters.</summary>
    public const int MaxUrlLength = 2_000;

    // Special-purpose IPv4 and IPv6 ranges that are not the public internet (IANA's registries).
    private static readonly IPNetwork[] Internal =
    [
        IPNetwork.Parse("0.0.0.0/8"), // "this network", 0.0.0.0 among it
        IPNetwork.Parse("10.0.0.0/8"),
        IPNetwork.Parse("100.64.0.0/10"), // carrier-grade NAT
        IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"), // link-local, cloud metadata services among it
        IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.0.0.0/24"),
        IPNetwork.Parse("192.0.2.0/24"),
        IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("198.18.0.0/15"),
        IPNetwork.Parse("198.51.100.0/24"),
        IPNetwork.Parse("203.0.113.0/24"),
        IPNetwork.Parse("224.0.0.0/4"), // multicast
        IPNetwork.Parse("240.0.0.0/4"), // reserved, 255.255.255.255 among it
        IPNetwork.Parse("192.88.99.0/24"), // 6to4 relays
        IPNetwork.Parse("::/96"), // unspecified, loopback and IPv4-compatible: an IPv4 address in disguise
        IPNetwork.Parse("::ffff:0:0:0/96"), // SIIT: the same
        IPNetwork.Parse("64:ff9b::/96"), // NAT64: the same
        IPNetwork.Parse("64:ff9b:1::/48"), // local NAT64
        IPNetwork.Parse("100::/64"),
        IPNetwork.Parse("2001::/32"), // Teredo: an IPv4 address inside
        IPNetwork.Parse("2001:db8::/32"),
        IPNetwork.Parse("2002::/16"), // 6to4: an IPv4 address inside
        IPNetwork.Parse("3fff::/20"), // documentation
        IPNetwork.Parse("5f00::/16"), // segment routing
        IPNetwork.Parse("fc00::/7"), // unique local
        IPNetwork.Parse("fe80::/10"), // link-local
        IPNetwork.Parse("fec0::/10"), // site-local
        IPNetwork.Parse("ff00::/8"), // multicast
    ];

    private readonly IReadOnlyList<IPNetwork> _allowed;
    private readonly IServer? _server;

    /// <param name="options">Valid webhook settings: the allow-list.</param>
    /// <param name="server">The server whose listening endpoints are refused; null where there is none.</param>
    public WebhookDestinations(IOptions<WebhookOptions> options, IServer? server = null)
    {
        _allowed = options.Value.ParsedAllowedNetworks;
        _server = server;
    }

    /// <summary>
    /// Checks a URL given for a webhook: an absolute http or https URL of at most <see cref="MaxUrlLength"/>
    /// characters, with no user name or password in it, whose host is an allowed address or a name every address of
    /// which is allowed.
    /// </summary>
    /// <returns>The URL, or what is wrong with it in words a client can show (never an internal detail).</returns>
    public async Task<(Uri? Url, string? Error)> CheckUrlAsync(string? url, CancellationToken cancellationToken)
    {
        if (url is null
            || url.Length > MaxUrlLength
            || !Uri.TryCreate(url, UriKind.Absolute, out Uri? uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            return (null, $"'url' is an absolute http or https URL of at most {MaxUrlLength} characters.");
        }

        // "http://@host/" has an empty user name: still not a URL a webhook may have.
        if (uri.UserInfo.Length > 0 || uri.GetLeftPart(UriPartial.Authority).Contains('@', StringComparison.Ordinal))
        {
            return (null, "'url' must not carry a user name or password; put a secret in the query instead.");
        }

        if (uri.Port == 0)
        {
            return (null, "'url' must name a port other than 0.");
        }

        IPAddress[] addresses;
        try
        {
            addresses = await ResolveAsync(uri.IdnHost, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            return (null, "The host of 'url' does not resolve.");
        }

        return addresses.Length > 0 && addresses.All(address => IsAllowed(address, uri.Port))
            ? (uri, null)
            : (null, "'url' points to a loopback, private or otherwise internal address, or to this service: webhooks go to public addresses only.");
    }

    /// <summary>A URL as the listing shows it: without user name, password, query or fragment, any of which may hold
    /// a secret.</summary>
    public static string Redact(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out Uri? uri)
            ? uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped)
            : "(not a URL)";

    /// <summary>A URL as the log shows it: its scheme, host and port only (some receivers keep a token in the
    /// path).</summary>
    public static string Origin(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out Uri? uri)
            ? uri.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped)
            : "(not a URL)";

    /// <summary>
    /// Whether a delivery may connect to <paramref name="address"/> on <paramref name="port"/>: it is not one of this
    /// service's listening endpoints, and it is public or on an allowed network.
    /// </summary>
    public bool IsAllowed(IPAddress address, int port)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IsOwnEndpoint(address, port))
        {
            return false;
        }

        return _allowed.Any(network => network.Contains(address)) || !Internal.Any(network => network.Contains(address));
    }

    /// <summary>
    /// Connects a delivery: resolves the host, keeps the addresses <see cref="IsAllowed"/> accepts, and connects to the
    /// first of them that answers. For <see cref="SocketsHttpHandler.ConnectCallback"/>.
    /// </summary>
    /// <exception cref="WebhookRefusedException">No address of the host may be connected to.</exception>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        DnsEndPoint endpoint = context.DnsEndPoint;
        IPAddress[] addresses = await ResolveAsync(endpoint.Host, cancellationToken).ConfigureAwait(false);
        IPAddress[] allowed = [.. addresses.Where(address => IsAllowed(address, endpoint.Port))];
        if (allowed.Length == 0)
        {
            throw new WebhookRefusedException(
                $"The webhook's host resolves to no address a webhook may be sent to ({addresses.Length} refused).");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, endpoint.Port, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        // An address written as one (in any of the forms IPv4 allows: 127.1, 2130706433, 0x7f000001) is not looked up.
        if (IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? literal))
        {
            return [literal];
        }

        return await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
    }

    // An endpoint this service listens on: the same port, and the same address, or any local address when the service
    // listens on every address (0.0.0.0, [::], localhost or a host name).
    private bool IsOwnEndpoint(IPAddress address, int port)
    {
        ICollection<string>? listening = _server?.Features.Get<IServerAddressesFeature>()?.Addresses;
        if (listening is null)
        {
            return false;
        }

        foreach (string listener in listening)
        {
            if (!TryParseListener(listener, out IPAddress? listenerAddress, out int listenerPort) || listenerPort != port)
            {
                continue;
            }

            // 0.0.0.0 and [::] as a destination connect to this host, whatever address it listens on.
            if (listenerAddress is null || listenerAddress.Equals(IPAddress.Any) || listenerAddress.Equals(IPAddress.IPv6Any)
                ? IsLocal(address)
                : (listenerAddress.IsIPv4MappedToIPv6 ? listenerAddress.MapToIPv4() : listenerAddress).Equals(address)
                    || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
            {
                return true;
            }
        }

        return false;
    }

    // "http://127.0.0.1:5080", "http://[::]:80", "http://localhost:5000", "http://*:5000", "http://+:5000".
    private static bool TryParseListener(string listener, out IPAddress? address, out int port)
    {
        address = null;
        port = 0;
        string normalized = listener.Replace("://*", "://any-address", StringComparison.Ordinal)
            .Replace("://+", "://any-address", StringComparison.Ordinal);
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out Uri? uri))
        {
            return false;
        }

        port = uri.Port;
        address = IPAddress.TryParse(uri.Host.Trim('[', ']'), out IPAddress? parsed) ? parsed : null;
        return true;
    }

    private static bool IsLocal(IPAddress address) =>
        IPAddress.IsLoopback(address)
        || address.Equals(IPAddress.Any)
        || address.Equals(IPAddress.IPv6Any)
        || NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(nic => nic.GetIPProperties().UnicastAddresses)
            .Any(unicast => unicast.Address.Equals(address));
}

/// <summary>A delivery was not sent: its destination is not one a webhook may be sent to. Not retried.</summary>
internal sealed class WebhookRefusedException(string message) : Exception(message);
