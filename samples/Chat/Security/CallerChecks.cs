using Chat.Api;
using Microsoft.Extensions.Options;

namespace Chat.Security;

/// <summary>
/// Refuses what a page on another origin may make a browser send: a WebSocket upgrade or a state-changing request
/// (any method but GET, HEAD and OPTIONS) whose <c>Origin</c> is neither the service's own nor one of
/// <see cref="SecurityOptions.AllowedOrigins"/> gets 403. Browsers send <c>Origin</c> with both, and a page cannot
/// forge it.
/// </summary>
/// <remarks>
/// The service's own origin is the scheme and host of the request itself, which the host filter
/// (<c>AllowedHosts</c>) has already checked, so that a name rebound to the service's address (DNS rebinding) is
/// refused there. Behind a proxy that ends TLS, the request's scheme is the proxy's only once the forwarded headers are
/// applied; otherwise, list the public origin in <see cref="SecurityOptions.AllowedOrigins"/>.
/// </remarks>
internal sealed class CallerChecks(IOptions<SecurityOptions> options)
{
    private readonly HashSet<string> _allowed = new(
        options.Value.AllowedOrigins.Select(origin => NormalizeOrigin(origin)!),
        StringComparer.OrdinalIgnoreCase);

    /// <summary>The middleware.</summary>
    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        HttpRequest request = context.Request;
        bool stateChanging = !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method));
        if ((stateChanging || context.WebSockets.IsWebSocketRequest)
            && request.Headers.Origin is { Count: > 0 } origin
            && !IsAllowed(origin.ToString(), request))
        {
            return ChatEndpoints.Error(StatusCodes.Status403Forbidden, "Requests from pages of other origins are not accepted.")
                .ExecuteAsync(context);
        }

        return next(context);
    }

    /// <summary><paramref name="origin"/> as <c>scheme://host[:port]</c>, lower case, the default port left out; null
    /// when it is not an origin.</summary>
    public static string? NormalizeOrigin(string origin) =>
        Uri.TryCreate(origin, UriKind.Absolute, out Uri? uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && uri.PathAndQuery == "/" && uri.UserInfo.Length == 0 && !origin.TrimEnd('/').Contains('?', StringComparison.Ordinal)
            ? uri.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped).ToLowerInvariant()
            : null;

    private bool IsAllowed(string origin, HttpRequest request)
    {
        // "null" (a sandboxed frame, a file) and anything else that is not an origin is refused.
        if (NormalizeOrigin(origin) is not { } normalized)
        {
            return false;
        }

        string own = NormalizeOrigin($"{request.Scheme}://{request.Host.Value}") ?? "";
        return normalized == own || _allowed.Contains(normalized);
    }
}
