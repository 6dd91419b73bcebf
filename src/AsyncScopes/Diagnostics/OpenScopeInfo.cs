using System.Diagnostics;
namespace AsyncScopes;

/// <summary>A scope that was opened and not yet closed, as leak tracking sees it.</summary>
[DebuggerDisplay("{Kind} {Name}, created {CreatedAt}")]
public sealed class OpenScopeInfo
{
    internal OpenScopeInfo(string kind, string? name, DateTimeOffset createdAt, string? creationStackTrace, OpenScopeInfo? parent = null)
    {
        Parent = parent;
        Kind = kind;
        Name = name;
        CreatedAt = createdAt;
        CreationStackTrace = creationStackTrace;
    }

    /// <summary>What the scope is: <c>"TaskScope"</c>, <c>"AsyncExitStack"</c>, <c>"PoolLease"</c> or <c>"WorkQueue"</c>.</summary>
    public string Kind { get; }

    /// <summary>The name given to the scope (a pool's name for a lease), if any.</summary>
    public string? Name { get; }

    /// <summary>When the scope was created (a lease: when it was rented). For a lease rented while leak tracking was
    /// off, which records nothing then, the time its leak was found.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>
    /// The tracked <see cref="TaskScope"/> whose body or child created this scope (Python's <c>asyncio pstree</c> reads
    /// the same link); <see langword="null"/> for a scope created outside every tracked scope, or while leak tracking
    /// was off. It may have closed since: see <see cref="ScopeDiagnostics.WriteTree"/>.
    /// </summary>
    public OpenScopeInfo? Parent { get; }

    /// <summary>Where the scope was created; <see langword="null"/> unless leak tracking was on at creation.</summary>
    public string? CreationStackTrace { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Kind}{(Name is null ? string.Empty : " '" + Name + "'")} created at {CreatedAt:O}{(CreationStackTrace is null ? string.Empty : Environment.NewLine + CreationStackTrace)}";
}
