namespace Chat.Security;

/// <summary>Who may call the service: section <c>Security</c> of the configuration.</summary>
internal sealed class SecurityOptions
{
    public const string Section = "Security";

    /// <summary>
    /// Origins (<c>https://chat.example.com</c>) besides the service's own whose pages may open WebSockets and send
    /// state-changing requests. A request with an <c>Origin</c> header from any other origin gets 403; a request
    /// without one does not come from a browser page (a command-line client, a load generator) and is not checked.
    /// </summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>
    /// The key that webhook management (<c>/api/webhooks</c>) requires, sent as <c>Authorization: Bearer &lt;key&gt;</c>;
    /// at least 16 characters. When it is not set, one is generated at the first start and shown in the log that once
    /// (<see cref="AdminKey"/>).
    /// </summary>
    public string? AdminApiKey { get; set; }

    /// <summary>
    /// Keys of the clients that may read, post and open WebSockets (at least 16 characters each), sent as
    /// <c>Authorization: Bearer &lt;key&gt;</c>, or as <c>access_token=&lt;key&gt;</c> on a WebSocket request. Empty by
    /// default: reading, posting and WebSockets are open to anyone (<see cref="ClientKeys"/>).
    /// </summary>
    public string[] ClientKeys { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        if (ClientKeys.Any(key => key.Length < 16 || key.Any(char.IsWhiteSpace)))
        {
            yield return "Security:ClientKeys: each key must have at least 16 characters and no spaces.";
        }

        if (!string.IsNullOrEmpty(AdminApiKey) && (AdminApiKey.Length < 16 || AdminApiKey.Any(char.IsWhiteSpace)))
        {
            yield return "Security:AdminApiKey must have at least 16 characters and no spaces.";
        }

        foreach (string origin in AllowedOrigins.Where(origin => CallerChecks.NormalizeOrigin(origin) is null))
        {
            yield return $"Security:AllowedOrigins: '{origin}' is not an origin: a scheme, a host and, when not the default, a port, such as https://chat.example.com.";
        }
    }
}
