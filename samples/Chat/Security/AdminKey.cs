using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Chat.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Chat.Security;

/// <summary>
/// The admin API key, which webhook management requires (<c>Authorization: Bearer &lt;key&gt;</c>). It is
/// <see cref="SecurityOptions.AdminApiKey"/> when set; otherwise a random key is generated at the first start, written
/// to the log that once, and only its SHA-256 hash kept, in the database, for every later start (and every node).
/// </summary>
internal sealed partial class AdminKey(IOptions<SecurityOptions> options, ILogger<AdminKey> logger)
{
    /// <summary>The authentication scheme and authorization policy of the admin endpoints.</summary>
    public const string Scheme = "AdminKey";

    private const string HashSetting = "admin_key_sha256";

    private byte[]? _hash;

    /// <summary>Loads the key's hash, or generates the key and stores its hash. Called once the database is open.</summary>
    public async Task LoadAsync(ChatStore store, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrEmpty(options.Value.AdminApiKey))
        {
            _hash = Hash(options.Value.AdminApiKey);
            return;
        }

        string generated = Base64UrlEncode(RandomNumberGenerator.GetBytes(32));
        (string stored, bool added) = await store.GetOrAddSettingAsync(HashSetting, Convert.ToHexString(Hash(generated)), cancellationToken)
            .ConfigureAwait(false);
        _hash = Convert.FromHexString(stored);
        if (added)
        {
            LogGenerated(logger, generated);
        }
    }

    /// <summary>Whether <paramref name="key"/> is the admin key; in constant time.</summary>
    public bool Matches(string key) =>
        _hash is { } hash && CryptographicOperations.FixedTimeEquals(Hash(key), hash);

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private static string Base64UrlEncode(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [LoggerMessage(Level = LogLevel.Warning, Message = "Security:AdminApiKey is not set, so an admin API key was generated for webhook management. It is shown this once, and only its hash is kept: {Key}")]
    private static partial void LogGenerated(ILogger logger, string key);
}

/// <summary>Authenticates a request that carries <c>Authorization: Bearer &lt;admin key&gt;</c>; a challenge answers
/// 401 with the API's JSON error.</summary>
internal sealed class AdminKeyHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory loggers, UrlEncoder encoder, AdminKey key)
    : BearerKeyHandler(options, loggers, encoder)
{
    protected override string Role => "admin";

    protected override string Needed => "This needs the admin API key: Authorization: Bearer <key>.";

    protected override bool Matches(string presented) => key.Matches(presented);
}
