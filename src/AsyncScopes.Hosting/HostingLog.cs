using Microsoft.Extensions.Logging;

namespace AsyncScopes.Hosting;

/// <summary>The messages of the hosted scopes.</summary>
internal static partial class HostingLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "{Child} of {Scope} still runs {Waited} after it was cancelled: something in it ignores cancellation, and holds up the shutdown.")]
    public static partial void Straggler(ILogger logger, string child, string? scope, TimeSpan waited);

    [LoggerMessage(Level = LogLevel.Error, Message = "A child of {Scope} failed: the scope cancelled the others, and starts no more.")]
    public static partial void Failed(ILogger logger, Exception exception, string scope);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Scope} stopped: {Outcome}.")]
    public static partial void Ended(ILogger logger, string scope, string outcome);
}
