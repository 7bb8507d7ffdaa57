using System.Numerics;

namespace QedFuse.Block.Qed;

/// <summary>
/// The address arithmetic of one image: a virtual offset splits into L1 index, L2 index and
/// offset within the cluster. All shifts and masks come from the validated header.
/// </summary>
internal sealed class QedGeometry
{
    public QedGeometry(QedHeader h)
    {
        ClusterSize = h.ClusterSize;
        ClusterBits = BitOperations.Log2(h.ClusterSize);
        TableBytes = (int)(h.TableSize * h.ClusterSize);
        TableEntries = TableBytes / sizeof(ulong);
        L2Bits = BitOperations.Log2((uint)TableEntries);
        HeaderBytes = (long)h.HeaderSize * h.ClusterSize;
        VirtualSize = (long)h.ImageSize;
    }

    public long ClusterSize { get; }

    public int ClusterBits { get; }

    /// <summary>Bytes in one L1 or L2 table (table_size clusters).</summary>
    public int TableBytes { get; }

    /// <summary>Entries in one table.</summary>
    public int TableEntries { get; }

    public int L2Bits { get; }

    public long HeaderBytes { get; }

    /// <summary>The image size from the header; changes only by a resize, with no request in flight.</summary>
    public long VirtualSize { get; set; }


    /// <summary>Virtual bytes one L2 table maps.</summary>
    public long L2Span => (long)TableEntries << ClusterBits;

    public int L1Index(long offset) => (int)(offset >> (ClusterBits + L2Bits));

    public int L2Index(long offset) => (int)((offset >> ClusterBits) & (TableEntries - 1));

    public long OffsetInCluster(long offset) => offset & (ClusterSize - 1);

    public long ClusterStart(long offset) => offset & ~(ClusterSize - 1);

    /// <summary>Bytes from <paramref name="offset"/> to the end of the L2 table region that holds it.</summary>
    public long BytesToTableEnd(long offset) => L2Span - (offset & (L2Span - 1));

    public long ClustersIn(long bytes) => (bytes + ClusterSize - 1) >> ClusterBits;
}
