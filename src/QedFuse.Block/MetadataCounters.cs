namespace QedFuse.Block;

/// <summary>
/// What a driver's metadata machinery has done since the image was opened, as the mount's
/// statistics report it. Formats without metadata (raw) report zeros.
/// </summary>
public readonly record struct MetadataCounters(
    long ClustersAllocated,
    long CacheHits,
    long CacheMisses,
    long CacheEvictions,
    long FlushPasses,
    long FlushTimeNs,
    long DirtyBytes);

/// <summary>
/// The counters a driver bumps as it works. Every field is written only under the driver's
/// metadata lock (which it holds anyway at those points), so counting adds no synchronisation;
/// readers take a possibly slightly stale but never torn value (64-bit fields, aligned).
/// Shared by every format driver; it outlives a driver's reload of its tables.
/// </summary>
internal sealed class MetadataStatistics
{
    public long ClustersAllocated;
    public long CacheHits;
    public long CacheMisses;
    public long CacheEvictions;
    public long FlushPasses;
    public long FlushTimeNs;

    public MetadataCounters Snapshot(long dirtyBytes) => new(
        Volatile.Read(ref ClustersAllocated),
        Volatile.Read(ref CacheHits),
        Volatile.Read(ref CacheMisses),
        Volatile.Read(ref CacheEvictions),
        Volatile.Read(ref FlushPasses),
        Volatile.Read(ref FlushTimeNs),
        dirtyBytes);
}
