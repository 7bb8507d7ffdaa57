namespace QedFuse.Block.Qed;

/// <summary>
/// QED has no free-space map: clusters for data and tables are appended at the end of the
/// file, never reused. Allocation starts at the file length rounded up to a cluster, so a
/// freshly allocated cluster is always beyond anything ever written and reads as zeros until
/// written. Guarded by the metadata lock.
/// </summary>
internal sealed class ClusterAllocator
{
    private readonly long _clusterSize;

    public ClusterAllocator(long fileLength, long clusterSize)
    {
        _clusterSize = clusterSize;
        End = (fileLength + clusterSize - 1) / clusterSize * clusterSize;
        ValidLimit = fileLength / clusterSize * clusterSize;
    }

    /// <summary>Where the next cluster goes; the file must reach here before metadata pointing below it is written.</summary>
    public long End { get; private set; }

    /// <summary>Offsets below this (and past the header) are valid cluster offsets (QEMU: file size rounded down).</summary>
    public long ValidLimit { get; private set; }

    public long Allocate(long clusters)
    {
        long at = End;
        End += clusters * _clusterSize;
        ValidLimit = End;
        return at;
    }
}
