namespace AsyncScopes;

/// <summary>A snapshot of a <see cref="WorkQueue{T}"/>'s counts.</summary>
/// <param name="Pending">Items accepted and not yet started.</param>
/// <param name="Running">Handlers running now.</param>
/// <param name="Completed">Items whose handler completed.</param>
/// <param name="Failed">Items whose handler failed.</param>
public readonly record struct WorkQueueStatistics(long Pending, int Running, long Completed, long Failed);
