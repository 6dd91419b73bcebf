using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Chat.Security;

/// <summary>
/// The headers every response carries: no MIME sniffing, no framing by other pages, no referrer sent on, and a
/// content security policy. The page's policy allows its own inline script and style by their hashes, computed from
/// the page itself, and connections to its own origin only; every other response allows nothing.
/// </summary>
internal static partial class SecurityHeaders
{
    /// <summary>The page, as served at <c>/</c>.</summary>
    public static readonly byte[] Page = ReadPage();

    /// <summary>The content security policy of the page.</summary>
    public static readonly string PagePolicy = MakePagePolicy(Encoding.UTF8.GetString(Page));

    /// <summary>The content security policy of every other response (JSON, errors).</summary>
    public const string ApiPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    /// <summary>The middleware: sets the headers before anything else writes.</summary>
    public static Task AddAsync(HttpContext context, RequestDelegate next)
    {
        Add(context.Response.Headers);
        return next(context);
    }

    /// <summary>Sets the headers of a response other than the page, such as the error that replaces a failed one.</summary>
    public static void Add(IHeaderDictionary headers)
    {
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers.ContentSecurityPolicy = ApiPolicy;
    }

    private static byte[] ReadPage()
    {
        using Stream page = Assembly.GetExecutingAssembly().GetManifestResourceStream("Chat.index.html")
            ?? throw new InvalidOperationException("The page is missing from the assembly.");
        using var copy = new MemoryStream();
        page.CopyTo(copy);
        return copy.ToArray();
    }

    private static string MakePagePolicy(string page)
    {
        string scripts = Hashes(ScriptElement().Matches(page));
        string styles = Hashes(StyleElement().Matches(page));
        return $"default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; img-src 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
    }

    // A CSP hash is of the element's text as the browser's parser leaves it: exactly as it stands between its tags, but
    // for line breaks, which the parser makes LF (a checkout may have made them CRLF).
    private static string Hashes(MatchCollection elements) =>
        string.Join(' ', elements.Select(element =>
        {
            string text = element.Groups[1].Value.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
            return $"'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text)))}'";
        }));

    [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex ScriptElement();

    [GeneratedRegex("<style>(.*?)</style>", RegexOptions.Singleline)]
    private static partial Regex StyleElement();
}
