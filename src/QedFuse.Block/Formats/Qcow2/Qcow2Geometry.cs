namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// The address arithmetic of one qcow2 image, from its validated header: virtual offset to
/// L1 index, L2 index and offset in the cluster; host cluster to refcount table index and
/// refcount block index. Virtual offsets are below 2^63, so no shift here overflows.
/// </summary>
internal sealed class Qcow2Geometry
{
    public Qcow2Geometry(Qcow2Header h)
    {
        ClusterBits = h.ClusterBits;
        ClusterSize = 1L << ClusterBits;
        L2Bits = ClusterBits - 3;
        L2Entries = 1 << L2Bits;
        // QEMU serves whole 512-byte sectors of the recorded size.
        VirtualSize = (long)h.Size & ~511L;
        RefcountOrder = h.RefcountOrder;
        RefcountBlockBits = ClusterBits + 3 - RefcountOrder;
        CompressedOffsetBits = 62 - (ClusterBits - 8);
    }

    public int ClusterBits { get; }

    public long ClusterSize { get; }

    /// <summary>log2 of the entries in one L2 table (one cluster of u64 entries).</summary>
    public int L2Bits { get; }

    public int L2Entries { get; }

    public long VirtualSize { get; }

    public int RefcountOrder { get; }

    public int RefcountBits => 1 << RefcountOrder;

    /// <summary>log2 of the refcount entries in one refcount block.</summary>
    public int RefcountBlockBits { get; }

    public long RefcountBlockEntries => 1L << RefcountBlockBits;

    /// <summary>Bits of a compressed L2 entry that hold the host byte offset; the sector count sits above them.</summary>
    public int CompressedOffsetBits { get; }

    /// <summary>Virtual bytes one L2 table maps.</summary>
    public long L2Span => 1L << (ClusterBits + L2Bits);

    public long L1Index(long offset) => offset >> (ClusterBits + L2Bits);

    public int L2Index(long offset) => (int)((offset >> ClusterBits) & (L2Entries - 1));

    public long OffsetInCluster(long offset) => offset & (ClusterSize - 1);

    public long ClusterStart(long offset) => offset & ~(ClusterSize - 1);

    public long ClusterIndex(long hostOffset) => hostOffset >> ClusterBits;

    /// <summary>Bytes from <paramref name="offset"/> to the end of the region its L2 table maps.</summary>
    public long BytesToTableEnd(long offset) => L2Span - (offset & (L2Span - 1));

    public long ClustersIn(long bytes) => (long)(((ulong)bytes + (ulong)ClusterSize - 1) >> ClusterBits);
}
