namespace AsyncScopes;

/// <summary>
/// A snapshot of an <see cref="AsyncPool{T}"/>, taken under the pool's lock: <c>Size = Idle + InUse</c> (items that
/// exist) and <c>Created - Destroyed = Size</c>.
/// </summary>
/// <param name="Size">Items that exist: idle or in use.</param>
/// <param name="Idle">Items waiting in the pool.</param>
/// <param name="InUse">Items leased, or between a lease and the pool (being reset or validated). An item being destroyed
/// counts as destroyed from the start of its destruction.</param>
/// <param name="Waiters">Renters waiting for an item.</param>
/// <param name="Created">Items created since the pool was.</param>
/// <param name="Destroyed">Items destroyed since the pool was, leases lost to the garbage collector included.</param>
public readonly record struct PoolStatistics(int Size, int Idle, int InUse, int Waiters, long Created, long Destroyed);
