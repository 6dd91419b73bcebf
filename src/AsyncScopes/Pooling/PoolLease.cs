using System.Diagnostics;
using System.Runtime.InteropServices;

namespace AsyncScopes;

/// <summary>
/// One rent of an item from an <see cref="AsyncPool{T}"/>: a scope that gives the item back when disposed.
/// </summary>
/// <typeparam name="T">The pooled item type.</typeparam>
/// <remarks>
/// A lease is a small struct so that renting allocates nothing. Copies of it stand for the same rent: the first
/// disposal returns the item, later disposals of it or of any copy are ignored. A lease dropped without being
/// disposed is found when the garbage collector collects it (and all its copies): its capacity is reclaimed and
/// <see cref="ScopeDiagnostics.LeakDetected"/> is raised. A copy of the lease just before it, returned and still
/// reachable, does not hide it; a copy of an older lease of the same item that is still reachable (kept in a field)
/// can, until that copy is collected too.
/// </remarks>
[StructLayout(LayoutKind.Auto)]
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public readonly struct PoolLease<T> : IAsyncDisposable
    where T : class
{
    private readonly PoolLeaseHandle<T>? _handle;
    private readonly long _version;

    internal PoolLease(PoolLeaseHandle<T> handle, long version)
    {
        _handle = handle;
        _version = version;
    }

    /// <summary>The leased item.</summary>
    /// <exception cref="ObjectDisposedException">The lease was returned (or was never rented).</exception>
    public T Value => _handle is not null && _handle.Slot.IsLeasedAs(_version)
        ? _handle.Slot.Item
        : throw new ObjectDisposedException(nameof(PoolLease<T>), "The lease was returned to its pool: its item belongs to the pool again.");

    /// <summary>Marks the item to be destroyed instead of returned to the pool when the lease is disposed. Does
    /// nothing on a returned lease.</summary>
    public void Discard() => _handle?.Slot.RequestDiscard(_version);

    /// <summary>Returns the item to the pool (or destroys it, if discarded, expired, or the pool is disposed). The
    /// second and later disposals, of this lease or a copy, do nothing.</summary>
    /// <returns>A task that completes when the item is back in the pool or destroyed; it never faults: reset and
    /// destroy failures are reported through <see cref="ScopeDiagnostics.UnobservedFailure"/>.</returns>
    public ValueTask DisposeAsync() => _handle is null ? default : _handle.Slot.Pool.ReturnAsync(_handle, _version);

    private string DebuggerDisplay => _handle is null
        ? "(none)"
        : _handle.Slot.IsLeasedAs(_version) ? $"Leased: {_handle.Slot.Item}" : "Returned";
}
