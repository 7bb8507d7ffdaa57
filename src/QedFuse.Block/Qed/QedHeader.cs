using System.Buffers.Binary;
using System.Numerics;

namespace QedFuse.Block.Qed;

/// <summary>
/// The 64-byte little-endian QED header (QEMU docs/interop/qed_spec), with every field checked
/// on the way in so that nothing later trusts a value it has not validated.
/// </summary>
internal sealed record QedHeader
{
    public const uint Magic = 0x00444551; // "QED\0"
    public const int Size = 64;

    public const ulong FeatureBackingFile = 0x01;
    public const ulong FeatureNeedCheck = 0x02;
    public const ulong FeatureBackingFormatNoProbe = 0x04;
    public const ulong KnownFeatures = FeatureBackingFile | FeatureNeedCheck | FeatureBackingFormatNoProbe;

    public const uint MinClusterSize = 4 * 1024;
    public const uint MaxClusterSize = 64 * 1024 * 1024;
    public const uint DefaultClusterSize = 64 * 1024;
    public const uint MinTableSize = 1;
    public const uint MaxTableSize = 16;
    public const uint DefaultTableSize = 4;

    public required uint ClusterSize { get; init; }
    public required uint TableSize { get; init; }
    public required uint HeaderSize { get; init; }
    public required ulong Features { get; init; }
    public ulong CompatFeatures { get; init; }
    public ulong AutoclearFeatures { get; init; }
    public required ulong L1TableOffset { get; init; }
    public required ulong ImageSize { get; init; }
    public uint BackingFilenameOffset { get; init; }
    public uint BackingFilenameSize { get; init; }

    public bool NeedCheck => (Features & FeatureNeedCheck) != 0;

    public bool HasBackingFile => (Features & FeatureBackingFile) != 0;

    public bool BackingIsRaw => (Features & FeatureBackingFormatNoProbe) != 0;

    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == Magic;

    /// <summary>The largest virtual size this geometry can address: L1 entries x L2 entries x cluster size.</summary>
    /// <remarks>Capped at <see cref="long.MaxValue"/>: the largest geometries overflow 64 bits, and offsets are signed.</remarks>
    public static ulong MaxImageSize(uint clusterSize, uint tableSize)
    {
        UInt128 entries = (UInt128)tableSize * clusterSize / sizeof(ulong);
        UInt128 max = entries * entries * clusterSize;
        return max > long.MaxValue ? long.MaxValue / 512 * 512 : (ulong)max;
    }

    public static bool IsValidClusterSize(ulong v) => BitOperations.IsPow2(v) && v >= MinClusterSize && v <= MaxClusterSize;

    public static bool IsValidTableSize(ulong v) => BitOperations.IsPow2(v) && v >= MinTableSize && v <= MaxTableSize;

    /// <summary>Parses and validates a header read from <paramref name="path"/>, a file of <paramref name="fileLength"/> bytes.</summary>
    public static QedHeader Parse(ReadOnlySpan<byte> b, string path, long fileLength)
    {
        if (b.Length < Size || !HasMagic(b))
        {
            throw new BadImageException(path, b.Length < Size ? "file too short for a QED header" : "not a QED image (bad magic)");
        }

        var h = new QedHeader
        {
            ClusterSize = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
            TableSize = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]),
            HeaderSize = BinaryPrimitives.ReadUInt32LittleEndian(b[12..]),
            Features = BinaryPrimitives.ReadUInt64LittleEndian(b[16..]),
            CompatFeatures = BinaryPrimitives.ReadUInt64LittleEndian(b[24..]),
            AutoclearFeatures = BinaryPrimitives.ReadUInt64LittleEndian(b[32..]),
            L1TableOffset = BinaryPrimitives.ReadUInt64LittleEndian(b[40..]),
            ImageSize = BinaryPrimitives.ReadUInt64LittleEndian(b[48..]),
            BackingFilenameOffset = BinaryPrimitives.ReadUInt32LittleEndian(b[56..]),
            BackingFilenameSize = BinaryPrimitives.ReadUInt32LittleEndian(b[60..]),
        };
        h.Validate(path, fileLength);
        return h;
    }

    private void Validate(string path, long fileLength)
    {
        void Fail(string problem) => throw new BadImageException(path, problem);

        if ((Features & ~KnownFeatures) != 0)
        {
            Fail($"unsupported feature bits 0x{Features & ~KnownFeatures:x} in header field 'features'");
        }

        if (!IsValidClusterSize(ClusterSize))
        {
            Fail($"header field 'cluster_size' is {ClusterSize}: must be a power of two from 4 KiB to 64 MiB");
        }

        if (!IsValidTableSize(TableSize))
        {
            Fail($"header field 'table_size' is {TableSize}: must be a power of two from 1 to 16");
        }

        ulong headerBytes = (ulong)HeaderSize * ClusterSize;
        if (HeaderSize == 0 || headerBytes > uint.MaxValue)
        {
            Fail($"header field 'header_size' is {HeaderSize} clusters: must be at least 1 and fit in 4 GiB");
        }

        ulong max = MaxImageSize(ClusterSize, TableSize);
        // Size 0 is legal: qemu-img creates it and QEMU opens it as an empty disk.
        if (ImageSize % 512 != 0 || ImageSize > max)
        {
            Fail($"header field 'image_size' is {ImageSize}: must be a multiple of 512 no larger than {max} for this geometry");
        }

        ulong tableBytes = (ulong)TableSize * ClusterSize;
        if (L1TableOffset % ClusterSize != 0 || L1TableOffset < headerBytes || L1TableOffset > (ulong)fileLength
            || tableBytes > (ulong)fileLength - L1TableOffset)
        {
            Fail($"header field 'l1_table_offset' is {L1TableOffset}: must be cluster-aligned, after the header, with the whole L1 table inside the {fileLength}-byte file");
        }

        if (HasBackingFile)
        {
            ulong end = (ulong)BackingFilenameOffset + BackingFilenameSize;
            if (BackingFilenameSize == 0 || BackingFilenameOffset < Size || end > headerBytes || end > (ulong)fileLength)
            {
                Fail($"header fields 'backing_filename_offset' {BackingFilenameOffset} and 'backing_filename_size' {BackingFilenameSize} do not lie inside the header clusters");
            }
        }
    }

    public void WriteTo(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], ClusterSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], TableSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], HeaderSize);
        BinaryPrimitives.WriteUInt64LittleEndian(b[16..], Features);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], CompatFeatures);
        BinaryPrimitives.WriteUInt64LittleEndian(b[32..], AutoclearFeatures);
        BinaryPrimitives.WriteUInt64LittleEndian(b[40..], L1TableOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(b[48..], ImageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[56..], BackingFilenameOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(b[60..], BackingFilenameSize);
    }
}
