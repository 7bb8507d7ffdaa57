using System.Buffers.Binary;
using System.Text;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>One header extension as stored: {type u32, length u32, data padded to 8}.</summary>
internal sealed record HeaderExtension(uint Type, byte[] Data);

/// <summary>
/// The variable part of the first cluster: header extensions (backing format, feature name
/// table, and any the driver does not know, which are kept byte for byte when the header is
/// rewritten) and the backing file name.
/// </summary>
internal sealed record Qcow2HeaderExtensions
{
    public const uint End = 0;
    public const uint BackingFormat = 0xe2792aca;
    public const uint FeatureNameTable = 0x6803f857;
    public const uint Bitmaps = 0x23852875;
    public const uint FullDiskEncryption = 0x0537be77;
    public const uint ExternalDataFile = 0x44415441;

    private const int FeatureNameEntry = 48;

    public IReadOnlyList<HeaderExtension> Extensions { get; init; } = [];

    public string? BackingName { get; init; }

    public string? BackingFormatName => Find(BackingFormat) is { } e ? Encoding.UTF8.GetString(e.Data) : null;

    public HeaderExtension? Find(uint type) => Extensions.FirstOrDefault(e => e.Type == type);

    /// <summary>Parses the extensions and backing name from the first cluster of the image.</summary>
    public static Qcow2HeaderExtensions Parse(Qcow2Header h, ReadOnlySpan<byte> firstCluster, string path)
    {
        var list = new List<HeaderExtension>();
        int at = h.ExtensionsOffset;
        int limit = h.HasBackingFile ? (int)h.BackingFileOffset : firstCluster.Length;
        while (true)
        {
            if (at + 8 > limit)
            {
                // No room for another extension before the backing name: the list ends (QEMU reads it so too).
                break;
            }

            uint type = BinaryPrimitives.ReadUInt32BigEndian(firstCluster[at..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(firstCluster[(at + 4)..]);
            if (type == End)
            {
                break;
            }

            long padded = ((long)length + 7) & ~7L;
            if (at + 8 + padded > limit)
            {
                throw new BadImageException(path, $"header extension 0x{type:x8} at byte {at} ({length} bytes) runs past the {(h.HasBackingFile ? "backing file name" : "first cluster")}");
            }

            list.Add(new HeaderExtension(type, firstCluster.Slice(at + 8, (int)length).ToArray()));
            at += 8 + (int)padded;
        }

        var ext = new Qcow2HeaderExtensions
        {
            Extensions = list,
            BackingName = h.HasBackingFile
                ? Encoding.UTF8.GetString(firstCluster.Slice((int)h.BackingFileOffset, (int)h.BackingFileSize))
                : null,
        };
        ext.Validate(h, path);
        return ext;
    }

    private void Validate(Qcow2Header h, string path)
    {
        if (BackingName is { } name && name.Contains('\0'))
        {
            throw new BadImageException(path, "backing file name in the header contains a NUL byte");
        }

        if (Find(BackingFormat) is { } fmt && (fmt.Data.Length is 0 or > 16 || Array.IndexOf(fmt.Data, (byte)0) >= 0))
        {
            throw new BadImageException(path, "header extension 'backing format' is empty, longer than 16 bytes or holds a NUL byte");
        }

        ulong unknown = h.IncompatibleFeatures & ~Qcow2Header.KnownIncompat;
        if (unknown != 0)
        {
            throw new BadImageException(path, $"unsupported qcow2 feature{(ulong.PopCount(unknown) > 1 ? "s" : "")}: {DescribeIncompatible(unknown)}");
        }

        if ((h.IncompatibleFeatures & Qcow2Header.IncompatExternalData) != 0 || Find(ExternalDataFile) is not null)
        {
            throw new BadImageException(path, "uses an external data file (data_file), which this version does not support yet");
        }

        if ((h.IncompatibleFeatures & Qcow2Header.IncompatExtendedL2) != 0)
        {
            throw new BadImageException(path, "uses extended L2 entries (extended_l2=on, subclusters), which this version does not support yet");
        }

        if (Find(FullDiskEncryption) is not null)
        {
            throw new BadImageException(path, "carries a disk encryption header: encrypted qcow2 images are not supported");
        }
    }

    /// <summary>Names unknown incompatible bits from the image's own feature name table where it has them.</summary>
    private string DescribeIncompatible(ulong bits)
    {
        var names = new List<string>();
        for (int bit = 0; bit < 64; bit++)
        {
            if ((bits & (1UL << bit)) != 0)
            {
                names.Add(FeatureName(0, bit) is { } n ? $"'{n}' (incompatible bit {bit})" : $"incompatible bit {bit}");
            }
        }

        return string.Join(", ", names);
    }

    /// <summary>A feature's name from the feature name table (type 0 incompatible, 1 compatible, 2 autoclear).</summary>
    public string? FeatureName(int type, int bit)
    {
        if (Find(FeatureNameTable) is not { } table)
        {
            return null;
        }

        for (int at = 0; at + FeatureNameEntry <= table.Data.Length; at += FeatureNameEntry)
        {
            if (table.Data[at] == type && table.Data[at + 1] == bit)
            {
                ReadOnlySpan<byte> raw = table.Data.AsSpan(at + 2, FeatureNameEntry - 2);
                int nul = raw.IndexOf((byte)0);
                return Encoding.UTF8.GetString(nul < 0 ? raw : raw[..nul]);
            }
        }

        return null;
    }

    /// <summary>
    /// The feature name table QEMU writes into every v3 image: names for the bits this driver knows.
    /// </summary>
    public static HeaderExtension StandardFeatureNames()
    {
        (int Type, int Bit, string Name)[] features =
        [
            (0, 0, "dirty bit"),
            (0, 1, "corrupt bit"),
            (0, 2, "external data file"),
            (0, 3, "compression type"),
            (0, 4, "extended L2 entries"),
            (1, 0, "lazy refcounts"),
            (2, 0, "bitmaps"),
            (2, 1, "raw external data"),
        ];
        byte[] data = new byte[features.Length * FeatureNameEntry];
        for (int i = 0; i < features.Length; i++)
        {
            data[i * FeatureNameEntry] = (byte)features[i].Type;
            data[i * FeatureNameEntry + 1] = (byte)features[i].Bit;
            Encoding.ASCII.GetBytes(features[i].Name, data.AsSpan(i * FeatureNameEntry + 2));
        }

        return new HeaderExtension(FeatureNameTable, data);
    }

    /// <summary>Bytes the extensions take, with the end marker.</summary>
    public int EncodedLength => Extensions.Sum(e => 8 + ((e.Data.Length + 7) & ~7)) + 8;

    /// <summary>Writes the extensions and the end marker at <paramref name="b"/>[0..].</summary>
    public void WriteTo(Span<byte> b)
    {
        b[..EncodedLength].Clear();
        int at = 0;
        foreach (HeaderExtension e in Extensions)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b[at..], e.Type);
            BinaryPrimitives.WriteUInt32BigEndian(b[(at + 4)..], (uint)e.Data.Length);
            e.Data.CopyTo(b[(at + 8)..]);
            at += 8 + ((e.Data.Length + 7) & ~7);
        }
    }
}
