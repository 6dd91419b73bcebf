using System.Security.Claims;
using System.Text.Encodings.Web;
using Chat.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Chat.Security;

/// <summary>
/// ASP.NET Core authentication by a key sent as <c>Authorization: Bearer &lt;key&gt;</c> (or, where
/// <see cref="AcceptsQueryToken"/>, on a WebSocket request to <c>/ws/</c>, which a browser cannot give headers, as the
/// query parameter <c>access_token</c>, SignalR's convention). No key: no
/// result, so that another scheme may try; a wrong key: a failure. A challenge answers 401 with the API's JSON error.
/// </summary>
internal abstract class BearerKeyHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory loggers, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggers, encoder)
{
    /// <summary>The role a caller with the key has.</summary>
    protected abstract string Role { get; }

    /// <summary>What a challenge says is needed.</summary>
    protected abstract string Needed { get; }

    /// <summary>Whether the key may come as <c>access_token</c> in the query of a WebSocket request to <c>/ws/</c>.</summary>
    protected virtual bool AcceptsQueryToken => false;

    /// <summary>Whether <paramref name="presented"/> is a key of this scheme; in constant time.</summary>
    protected abstract bool Matches(string presented);

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? presented = Request.Headers.Authorization.ToString() is { } authorization
            && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                ? authorization["Bearer ".Length..].Trim()
                : AcceptsQueryToken && Context.WebSockets.IsWebSocketRequest && Request.Path.StartsWithSegments("/ws")
                    ? Request.Query["access_token"].FirstOrDefault()
                    : null;
        if (string.IsNullOrEmpty(presented))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (!Matches(presented))
        {
            return Task.FromResult(AuthenticateResult.Fail($"The key is not a key of {Scheme.Name}."));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Role, Role)], Scheme.Name);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    // A policy of two schemes challenges both: the first answers.
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (Response.HasStarted)
        {
            return Task.CompletedTask;
        }

        Response.Headers.WWWAuthenticate = "Bearer";
        return ChatEndpoints.Error(StatusCodes.Status401Unauthorized, Needed).ExecuteAsync(Context);
    }
}
