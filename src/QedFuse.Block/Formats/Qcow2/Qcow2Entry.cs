namespace QedFuse.Block.Formats.Qcow2;

/// <summary>What an L2 entry says about its virtual cluster.</summary>
internal enum Qcow2ClusterKind
{
    /// <summary>Offset 0, no zero flag: read the backing chain.</summary>
    Unallocated,

    /// <summary>Zero flag without a host cluster.</summary>
    ZeroPlain,

    /// <summary>Zero flag with a preallocated host cluster (still reads as zeros).</summary>
    ZeroAllocated,

    /// <summary>Data at a cluster-aligned host offset.</summary>
    Normal,

    /// <summary>Compressed data at an unaligned host byte offset.</summary>
    Compressed,
}

/// <summary>
/// Decoding and encoding of qcow2 table entries (big-endian u64s once read). L1 and refcount
/// table entries hold a cluster-aligned offset in bits 9-55 (L1) or 9-63 (refcount table);
/// L2 entries are standard (flags 63 copied, 62 compressed, 0 zero; offset bits 9-55) or
/// compressed (byte offset and extra sector count, split where <see cref="Qcow2Geometry.CompressedOffsetBits"/> says).
/// </summary>
internal static class Qcow2Entry
{
    public const ulong Copied = 1UL << 63;
    public const ulong CompressedFlag = 1UL << 62;
    public const ulong ZeroFlag = 1UL;

    /// <summary>Bits 9-55: the host offset of a table or standard data cluster.</summary>
    public const ulong OffsetMask = 0x00ff_ffff_ffff_fe00UL;

    /// <summary>Bits 9-63: the host offset of a refcount block.</summary>
    public const ulong RefcountTableOffsetMask = 0xffff_ffff_ffff_fe00UL;

    public const int CompressedSector = 512;

    public static long L1Offset(ulong entry) => (long)(entry & OffsetMask);

    public static long StandardOffset(ulong entry) => (long)(entry & OffsetMask);

    public static long RefcountBlockOffset(ulong entry) => (long)(entry & RefcountTableOffsetMask);

    public static Qcow2ClusterKind Kind(ulong entry)
    {
        if ((entry & CompressedFlag) != 0)
        {
            return Qcow2ClusterKind.Compressed;
        }

        bool zero = (entry & ZeroFlag) != 0;
        bool hasHost = (entry & OffsetMask) != 0;
        return zero ? (hasHost ? Qcow2ClusterKind.ZeroAllocated : Qcow2ClusterKind.ZeroPlain)
            : hasHost ? Qcow2ClusterKind.Normal : Qcow2ClusterKind.Unallocated;
    }

    /// <summary>A compressed cluster's host bytes: [Offset, Offset + Length), not aligned, possibly across clusters.</summary>
    public readonly record struct CompressedExtent(long Offset, int Length)
    {
        /// <summary>The 512-byte sectors the extent occupies, as refcounts count them.</summary>
        public long SectorStart => Offset & ~(long)(CompressedSector - 1);

        public long SectorEnd => Offset + Length;
    }

    public static CompressedExtent Compressed(ulong entry, Qcow2Geometry geo)
    {
        int bits = geo.CompressedOffsetBits;
        long offset = (long)(entry & ((1UL << bits) - 1));
        long sectors = (long)((entry >> bits) & ((1UL << (geo.ClusterBits - 8)) - 1)) + 1;
        return new CompressedExtent(offset, (int)(sectors * CompressedSector - (offset & (CompressedSector - 1))));
    }

    public static ulong EncodeCompressed(long offset, int length, Qcow2Geometry geo)
    {
        long sectors = ((offset & (CompressedSector - 1)) + length + CompressedSector - 1) / CompressedSector;
        return CompressedFlag | ((ulong)(sectors - 1) << geo.CompressedOffsetBits) | (ulong)offset;
    }
}
