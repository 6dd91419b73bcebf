using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Chat.Security;

/// <summary>
/// Who may chat. Open by default: anyone who reaches the service may read, post and open WebSockets, as on a public
/// chat. With <see cref="SecurityOptions.ClientKeys"/> set, each of those needs one of the client keys (or the admin
/// key), through ASP.NET Core authentication (<see cref="ClientKeyHandler"/>) and the authorization policy
/// <see cref="Policy"/>.
/// </summary>
internal static class ClientKeys
{
    /// <summary>The authentication scheme of the client keys.</summary>
    public const string Scheme = "ClientKey";

    /// <summary>The authorization policy of reading, posting and WebSockets.</summary>
    public const string Policy = "Client";

    /// <summary>The policy: anyone while no client key is set; otherwise a caller with a client key or the admin key.</summary>
    public static void AddPolicy(AuthorizationOptions authorization, SecurityOptions security) =>
        authorization.AddPolicy(Policy, policy =>
        {
            policy.AddAuthenticationSchemes(Scheme, AdminKey.Scheme);
            if (security.ClientKeys.Length == 0)
            {
                policy.RequireAssertion(_ => true);
            }
            else
            {
                policy.RequireAuthenticatedUser();
            }
        });
}

/// <summary>Authenticates a caller with one of <see cref="SecurityOptions.ClientKeys"/>.</summary>
internal sealed class ClientKeyHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory loggers, UrlEncoder encoder, IOptions<SecurityOptions> security)
    : BearerKeyHandler(options, loggers, encoder)
{
    private readonly byte[][] _hashes = [.. security.Value.ClientKeys.Select(key => SHA256.HashData(Encoding.UTF8.GetBytes(key)))];

    protected override string Role => "client";

    protected override bool AcceptsQueryToken => true;

    protected override string Needed => "This needs a client key: Authorization: Bearer <key> (access_token=<key> on a WebSocket).";

    // Every key is compared, so that the time taken does not say which one was close.
    protected override bool Matches(string presented)
    {
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        bool matched = false;
        foreach (byte[] key in _hashes)
        {
            matched |= CryptographicOperations.FixedTimeEquals(hash, key);
        }

        return matched;
    }
}
