using System.Runtime.InteropServices;

namespace AsyncScopes;

/// <summary>
/// The counts of one work queue worker, written by that worker only. Fields, so that they can be read and written
/// atomically; padded so that workers on different cores never share a cache line.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal sealed class WorkerCounters
{
#pragma warning disable CA1051 // Fields on purpose: Volatile needs them by reference.
    [FieldOffset(64)]
    public int Running;

    [FieldOffset(72)]
    public long Completed;

    [FieldOffset(80)]
    public long Failed;
#pragma warning restore CA1051
}
