using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Chat.Webhooks;

/// <summary>
/// The signature of a delivery, in the convention of Stripe's and GitHub's webhooks: the header
/// <c>X-Chat-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex&gt;</c>, where the hex is the HMAC-SHA256, keyed with the
/// webhook's secret, of <c>&lt;t&gt;.&lt;body&gt;</c>. A receiver that checks it knows the delivery came from the
/// service and was not changed; one that also refuses a <c>t</c> far from its own clock refuses a replay.
/// </summary>
internal static class WebhookSignature
{
    /// <summary>The request header that carries the signature.</summary>
    public const string Header = "X-Chat-Signature";

    /// <summary>A new webhook secret: 32 random bytes, as <c>whsec_</c> and 64 hex digits.</summary>
    public static string NewSecret() => "whsec_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>The header's value for <paramref name="body"/> sent at <paramref name="at"/>.</summary>
    public static string Sign(string secret, DateTimeOffset at, string body)
    {
        string timestamp = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        byte[] mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{body}"));
        return $"t={timestamp},v1={Convert.ToHexStringLower(mac)}";
    }
}
