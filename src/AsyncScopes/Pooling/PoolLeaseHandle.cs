namespace AsyncScopes;

/// <summary>
/// What a <see cref="PoolLease{T}"/> holds: the identity of a lease that the garbage collector can see drop. While a
/// lease is out, only the lease and its copies reference its handle (never the pool or the slot), so a lease dropped
/// without being returned lets its handle be collected, and the handle's finalizer reclaims the slot's place.
/// </summary>
/// <remarks>A slot owns two handles and leases them in turn, so that a copy of the lease just returned (a local of the
/// method that returned it, a field) never keeps the next lease of the same item from being found; a handle is
/// allocated once per item, never per rent.</remarks>
/// <typeparam name="T">The pooled item type.</typeparam>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA1816:Dispose methods should call SuppressFinalize", Justification = "Retiring a handle is what ends its need for finalization.")]
internal sealed class PoolLeaseHandle<T>(PoolSlot<T> slot, int index)
    where T : class
{
    ~PoolLeaseHandle() => Slot.OnHandleCollected(this);

    public PoolSlot<T> Slot { get; } = slot;

    /// <summary>Which of its slot's two handles this is.</summary>
    public int Index { get; } = index;

    /// <summary>Its slot was destroyed or reclaimed: nothing is left for the finalizer to do.</summary>
    public void Retire() => GC.SuppressFinalize(this);
}
