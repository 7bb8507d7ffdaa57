using System.Buffers.Binary;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// The big-endian qcow2 header (QEMU docs/interop/qcow2.txt): the fixed fields of versions 2
/// and 3, validated on the way in so that no later shift, allocation or table read trusts a
/// field it has not checked. Header extensions and the backing name live in
/// <see cref="Qcow2HeaderExtensions"/>.
/// </summary>
internal sealed record Qcow2Header
{
    public const uint Magic = 0x514649fb; // "QFI\xfb"
    public const int V2Size = 72;
    public const int V3MinSize = 104;

    /// <summary>v3 header_length when the compression type byte is present (104 + 1, padded to 8).</summary>
    public const int V3SizeWithCompressionType = 112;

    public const int MinClusterBits = 9;
    public const int MaxClusterBits = 21;
    public const int MaxBackingNameBytes = 1023;

    /// <summary>QEMU's limits: 32 MiB of L1, 8 MiB of refcount table, host offsets below 2^56.</summary>
    public const long MaxL1Bytes = 32L << 20;
    public const long MaxRefcountTableBytes = 8L << 20;
    public const int MaxSnapshots = 65536;

    public const ulong IncompatDirty = 1UL << 0;
    public const ulong IncompatCorrupt = 1UL << 1;
    public const ulong IncompatExternalData = 1UL << 2;
    public const ulong IncompatCompressionType = 1UL << 3;
    public const ulong IncompatExtendedL2 = 1UL << 4;
    public const ulong KnownIncompat = IncompatDirty | IncompatCorrupt | IncompatExternalData | IncompatCompressionType | IncompatExtendedL2;

    public const ulong CompatLazyRefcounts = 1UL << 0;

    public const byte CompressionZlib = 0;
    public const byte CompressionZstd = 1;

    public required int Version { get; init; }
    public ulong BackingFileOffset { get; init; }
    public uint BackingFileSize { get; init; }
    public required int ClusterBits { get; init; }
    public required ulong Size { get; init; }
    public uint CryptMethod { get; init; }
    public required uint L1Size { get; init; }
    public required ulong L1TableOffset { get; init; }
    public required ulong RefcountTableOffset { get; init; }
    public required uint RefcountTableClusters { get; init; }
    public uint SnapshotCount { get; init; }
    public ulong SnapshotsOffset { get; init; }
    public ulong IncompatibleFeatures { get; init; }
    public ulong CompatibleFeatures { get; init; }
    public ulong AutoclearFeatures { get; init; }
    public int RefcountOrder { get; init; } = 4;
    public uint HeaderLength { get; init; } = V2Size;
    public byte CompressionType { get; init; }

    public long ClusterSize => 1L << ClusterBits;

    public bool IsDirty => (IncompatibleFeatures & IncompatDirty) != 0;

    public bool IsCorrupt => (IncompatibleFeatures & IncompatCorrupt) != 0;

    public bool LazyRefcounts => (CompatibleFeatures & CompatLazyRefcounts) != 0;

    public bool HasBackingFile => BackingFileOffset != 0;

    /// <summary>Where header extensions start: right after the fixed header.</summary>
    public int ExtensionsOffset => Version == 2 ? V2Size : (int)HeaderLength;

    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(head) == Magic;

    /// <summary>
    /// Parses the fixed header from the start of <paramref name="b"/> (at least the first
    /// <see cref="V3MinSize"/> bytes of the file when it has them) and validates every field
    /// that does not need the feature name table; <see cref="Qcow2HeaderExtensions"/> reports
    /// unknown feature bits by name.
    /// </summary>
    public static Qcow2Header Parse(ReadOnlySpan<byte> b, string path, long fileLength)
    {
        if (b.Length < V2Size || !HasMagic(b))
        {
            throw new BadImageException(path, b.Length < V2Size ? "file too short for a qcow2 header" : "not a qcow2 image (bad magic)");
        }

        int version = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b[4..]), int.MaxValue);
        if (version is not (2 or 3))
        {
            throw new BadImageException(path, $"qcow2 version {version} is not supported (only 2 and 3)");
        }

        if (version == 3 && b.Length < V3MinSize)
        {
            throw new BadImageException(path, "file too short for a qcow2 version 3 header");
        }

        uint clusterBits = BinaryPrimitives.ReadUInt32BigEndian(b[20..]);
        var h = new Qcow2Header
        {
            Version = version,
            BackingFileOffset = BinaryPrimitives.ReadUInt64BigEndian(b[8..]),
            BackingFileSize = BinaryPrimitives.ReadUInt32BigEndian(b[16..]),
            ClusterBits = (int)Math.Min(clusterBits, int.MaxValue),
            Size = BinaryPrimitives.ReadUInt64BigEndian(b[24..]),
            CryptMethod = BinaryPrimitives.ReadUInt32BigEndian(b[32..]),
            L1Size = BinaryPrimitives.ReadUInt32BigEndian(b[36..]),
            L1TableOffset = BinaryPrimitives.ReadUInt64BigEndian(b[40..]),
            RefcountTableOffset = BinaryPrimitives.ReadUInt64BigEndian(b[48..]),
            RefcountTableClusters = BinaryPrimitives.ReadUInt32BigEndian(b[56..]),
            SnapshotCount = BinaryPrimitives.ReadUInt32BigEndian(b[60..]),
            SnapshotsOffset = BinaryPrimitives.ReadUInt64BigEndian(b[64..]),
        };
        if (version == 3)
        {
            uint headerLength = BinaryPrimitives.ReadUInt32BigEndian(b[100..]);
            h = h with
            {
                IncompatibleFeatures = BinaryPrimitives.ReadUInt64BigEndian(b[72..]),
                CompatibleFeatures = BinaryPrimitives.ReadUInt64BigEndian(b[80..]),
                AutoclearFeatures = BinaryPrimitives.ReadUInt64BigEndian(b[88..]),
                RefcountOrder = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b[96..]), int.MaxValue),
                HeaderLength = headerLength,
                CompressionType = headerLength > V3MinSize && b.Length > V3MinSize ? b[V3MinSize] : CompressionZlib,
            };
        }

        h.Validate(path, fileLength);
        return h;
    }

    private void Validate(string path, long fileLength)
    {
        void Fail(string problem) => throw new BadImageException(path, problem);

        if (ClusterBits is < MinClusterBits or > MaxClusterBits)
        {
            Fail($"header field 'cluster_bits' is {ClusterBits}: must be {MinClusterBits} to {MaxClusterBits} (512 B to 2 MiB clusters)");
        }

        if (CryptMethod != 0)
        {
            Fail($"is encrypted ({(CryptMethod == 1 ? "AES" : CryptMethod == 2 ? "LUKS" : $"method {CryptMethod}")}): encrypted qcow2 images are not supported");
        }

        if (Version == 3)
        {
            if (HeaderLength < V3MinSize || HeaderLength % 8 != 0 || HeaderLength > ClusterSize)
            {
                Fail($"header field 'header_length' is {HeaderLength}: must be a multiple of 8 from {V3MinSize} to the cluster size");
            }

            if (RefcountOrder > 6)
            {
                Fail($"header field 'refcount_order' is {RefcountOrder}: must be 0 to 6 (1 to 64-bit refcounts)");
            }

            bool typeBit = (IncompatibleFeatures & IncompatCompressionType) != 0;
            if (CompressionType > CompressionZstd || (CompressionType != CompressionZlib) != typeBit)
            {
                Fail($"header field 'compression_type' is {CompressionType} with the compression-type feature bit {(typeBit ? "set" : "clear")}: must be 0 (zlib, bit clear) or 1 (zstd, bit set)");
            }
        }

        if (Size > long.MaxValue)
        {
            Fail($"header field 'size' is {Size}: larger than 2^63 - 1 bytes");
        }

        if (L1TableOffset % (ulong)ClusterSize != 0 || (L1TableOffset == 0 && L1Size != 0))
        {
            Fail($"header field 'l1_table_offset' is {L1TableOffset}: must be a non-zero multiple of the cluster size");
        }

        ulong l1Bytes = (ulong)L1Size * sizeof(ulong);
        if (l1Bytes > MaxL1Bytes)
        {
            Fail($"header field 'l1_size' is {L1Size}: larger than QEMU's limit of {MaxL1Bytes / sizeof(ulong)} entries");
        }

        ulong needed = L1EntriesFor(Size, ClusterBits);
        if (L1Size < needed)
        {
            Fail($"header field 'l1_size' is {L1Size}: {needed} entries are needed to map the virtual size {Size}");
        }

        if (L1TableOffset > (ulong)fileLength || l1Bytes > (ulong)fileLength - L1TableOffset)
        {
            Fail($"header fields 'l1_table_offset' {L1TableOffset} and 'l1_size' {L1Size}: the L1 table does not lie inside the {fileLength}-byte file");
        }

        ulong refcountBytes = (ulong)RefcountTableClusters << ClusterBits;
        if (RefcountTableOffset % (ulong)ClusterSize != 0 || RefcountTableOffset == 0 || RefcountTableClusters == 0
            || refcountBytes > MaxRefcountTableBytes || RefcountTableOffset >= (ulong)fileLength)
        {
            Fail($"header fields 'refcount_table_offset' {RefcountTableOffset} and 'refcount_table_clusters' {RefcountTableClusters}: "
                + $"the refcount table must be cluster-aligned, at most {MaxRefcountTableBytes >> 20} MiB and start inside the {fileLength}-byte file");
        }

        if (SnapshotCount > MaxSnapshots)
        {
            Fail($"header field 'nb_snapshots' is {SnapshotCount}: more than {MaxSnapshots}");
        }

        if (SnapshotCount > 0 && (SnapshotsOffset % (ulong)ClusterSize != 0 || SnapshotsOffset == 0 || SnapshotsOffset >= (ulong)fileLength))
        {
            Fail($"header field 'snapshots_offset' is {SnapshotsOffset}: must be cluster-aligned and inside the {fileLength}-byte file");
        }

        if (HasBackingFile && (BackingFileSize == 0 || BackingFileSize > MaxBackingNameBytes || BackingFileOffset > (ulong)ClusterSize
            || BackingFileOffset + BackingFileSize > (ulong)ClusterSize || BackingFileOffset < (ulong)ExtensionsOffset))
        {
            Fail($"header fields 'backing_file_offset' {BackingFileOffset} and 'backing_file_size' {BackingFileSize}: "
                + $"the name must be 1 to {MaxBackingNameBytes} bytes after the header, inside the first cluster");
        }
    }

    /// <summary>L1 entries needed to map <paramref name="size"/> bytes: each L2 table maps cluster_size/8 clusters.</summary>
    public static ulong L1EntriesFor(ulong size, int clusterBits)
    {
        int spanBits = clusterBits + clusterBits - 3;
        return (size >> spanBits) + ((size & ((1UL << spanBits) - 1)) != 0 ? 1UL : 0UL);
    }

    /// <summary>Writes the fixed header (72 bytes for v2, <see cref="HeaderLength"/> for v3).</summary>
    public void WriteTo(Span<byte> b)
    {
        b[..ExtensionsOffset].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(b, Magic);
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], (uint)Version);
        BinaryPrimitives.WriteUInt64BigEndian(b[8..], BackingFileOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], BackingFileSize);
        BinaryPrimitives.WriteUInt32BigEndian(b[20..], (uint)ClusterBits);
        BinaryPrimitives.WriteUInt64BigEndian(b[24..], Size);
        BinaryPrimitives.WriteUInt32BigEndian(b[32..], CryptMethod);
        BinaryPrimitives.WriteUInt32BigEndian(b[36..], L1Size);
        BinaryPrimitives.WriteUInt64BigEndian(b[40..], L1TableOffset);
        BinaryPrimitives.WriteUInt64BigEndian(b[48..], RefcountTableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b[56..], RefcountTableClusters);
        BinaryPrimitives.WriteUInt32BigEndian(b[60..], SnapshotCount);
        BinaryPrimitives.WriteUInt64BigEndian(b[64..], SnapshotsOffset);
        if (Version == 3)
        {
            BinaryPrimitives.WriteUInt64BigEndian(b[72..], IncompatibleFeatures);
            BinaryPrimitives.WriteUInt64BigEndian(b[80..], CompatibleFeatures);
            BinaryPrimitives.WriteUInt64BigEndian(b[88..], AutoclearFeatures);
            BinaryPrimitives.WriteUInt32BigEndian(b[96..], (uint)RefcountOrder);
            BinaryPrimitives.WriteUInt32BigEndian(b[100..], HeaderLength);
            if (HeaderLength > V3MinSize)
            {
                b[V3MinSize] = CompressionType;
            }
        }
    }
}
