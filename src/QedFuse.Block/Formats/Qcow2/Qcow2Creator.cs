using System.Numerics;
using System.Text;
using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// Creates qcow2 images with qemu-img's options and defaults: the header (with its extensions
/// and backing name) in cluster 0, then the refcount table, the refcount blocks that count
/// every cluster of the new file (themselves included), the L1 table, and with preallocation
/// the L2 tables and data clusters. Every cluster in use has refcount 1.
/// </summary>
internal static class Qcow2Creator
{
    private static readonly string[] KnownOptions =
        ["cluster_size", "compat", "lazy_refcounts", "refcount_bits", "compression_type", "preallocation", "extended_l2", "data_file", "data_file_raw", "encryption", "encrypt.format"];

    private sealed record Settings(int ClusterBits, int Version, bool LazyRefcounts, int RefcountOrder, byte CompressionType, string Preallocation);

    public static void Create(string path, ImageCreateOptions options, ImageOpener opener)
    {
        Settings s = ParseSettings(path, options.FormatOptions);
        string? backingFormat = options.BackingFormat;
        long? backingSize = null;
        if (options.BackingFile is { } backingName)
        {
            using IBlockImage backing = opener.OpenBacking(path, backingName, options.BackingFormat,
                new ImageOpenOptions { ReadOnly = true, ForceShare = true });
            backingSize = backing.VirtualSize;
            backingFormat ??= backing.FormatName;
            if (s.Preallocation != "off")
            {
                throw new BadImageException(path, "preallocation is not possible with a backing file (as in qemu-img)");
            }
        }

        long size = options.Size ?? backingSize
            ?? throw new BadImageException(path, "an image size is needed when there is no backing file");
        size = (size + 511) & ~511L;
        ulong l1Entries = Qcow2Header.L1EntriesFor((ulong)size, s.ClusterBits);
        if (size < 0 || l1Entries * sizeof(ulong) > Qcow2Header.MaxL1Bytes)
        {
            throw new BadImageException(path,
                $"size {size} is too large for cluster_size {1L << s.ClusterBits} (the L1 table would exceed {Qcow2Header.MaxL1Bytes >> 20} MiB)");
        }

        byte[] nameBytes = options.BackingFile is null ? [] : Encoding.UTF8.GetBytes(options.BackingFile);
        if (nameBytes.Length > Qcow2Header.MaxBackingNameBytes)
        {
            throw new BadImageException(path, $"backing file name longer than {Qcow2Header.MaxBackingNameBytes} bytes");
        }

        var extensions = new List<HeaderExtension>();
        if (options.BackingFile is not null && backingFormat is not null)
        {
            extensions.Add(new HeaderExtension(Qcow2HeaderExtensions.BackingFormat, Encoding.UTF8.GetBytes(backingFormat)));
        }

        if (s.Version == 3)
        {
            extensions.Add(Qcow2HeaderExtensions.StandardFeatureNames());
        }

        Write(path, options, s, size, (uint)l1Entries, new Qcow2HeaderExtensions { Extensions = extensions }, nameBytes);
    }

    private static void Write(string path, ImageCreateOptions options, Settings s, long size, uint l1Entries,
        Qcow2HeaderExtensions extensions, byte[] nameBytes)
    {
        long cs = 1L << s.ClusterBits;
        long l1Clusters = ((long)l1Entries * sizeof(ulong) + cs - 1) / cs;
        bool preallocate = s.Preallocation != "off";
        long l2Tables = preallocate ? l1Entries : 0;
        long dataClusters = preallocate ? (size + cs - 1) / cs : 0;

        // Refcount blocks count every cluster, themselves and the table included: iterate to the fixed point.
        long blockEntries = cs * 8 >> s.RefcountOrder;
        long blocks = 1, tableClusters = 1;
        while (true)
        {
            long total = 1 + tableClusters + blocks + l1Clusters + l2Tables + dataClusters;
            long needBlocks = (total + blockEntries - 1) / blockEntries;
            long needTable = (needBlocks * sizeof(ulong) + cs - 1) / cs;
            if (needBlocks == blocks && needTable == tableClusters)
            {
                break;
            }

            (blocks, tableClusters) = (needBlocks, needTable);
        }

        long tableOffset = cs;
        long blocksOffset = tableOffset + tableClusters * cs;
        long l1Offset = l1Entries == 0 ? 0 : blocksOffset + blocks * cs;
        long clusters = 1 + tableClusters + blocks + l1Clusters + l2Tables + dataClusters;
        var pieces = new List<(long, byte[])>();

        int headerLength = s.Version == 3 ? Qcow2Header.V3SizeWithCompressionType : Qcow2Header.V2Size;
        if (headerLength + extensions.EncodedLength + nameBytes.Length > cs)
        {
            // As QEMU does with small clusters: the feature name table is a courtesy, left out when it does not fit.
            extensions = extensions with { Extensions = extensions.Extensions.Where(e => e.Type != Qcow2HeaderExtensions.FeatureNameTable).ToList() };
        }

        int nameOffset = headerLength + extensions.EncodedLength;
        if (nameOffset + nameBytes.Length > cs)
        {
            throw new BadImageException(path, $"the header, its extensions and the backing file name do not fit in one {cs}-byte cluster");
        }

        var header = new Qcow2Header
        {
            Version = s.Version,
            BackingFileOffset = nameBytes.Length > 0 ? (ulong)nameOffset : 0,
            BackingFileSize = (uint)nameBytes.Length,
            ClusterBits = s.ClusterBits,
            Size = (ulong)size,
            L1Size = l1Entries,
            L1TableOffset = (ulong)l1Offset,
            RefcountTableOffset = (ulong)tableOffset,
            RefcountTableClusters = (uint)tableClusters,
            IncompatibleFeatures = s.CompressionType != Qcow2Header.CompressionZlib ? Qcow2Header.IncompatCompressionType : 0,
            CompatibleFeatures = s.LazyRefcounts ? Qcow2Header.CompatLazyRefcounts : 0,
            RefcountOrder = s.RefcountOrder,
            HeaderLength = (uint)headerLength,
            CompressionType = s.CompressionType,
        };
        byte[] first = new byte[nameOffset + nameBytes.Length];
        header.WriteTo(first);
        extensions.WriteTo(first.AsSpan(headerLength));
        nameBytes.CopyTo(first, nameOffset);
        pieces.Add((0, first));

        var table = new ulong[tableClusters * cs / sizeof(ulong)];
        for (long b = 0; b < blocks; b++)
        {
            table[b] = (ulong)(blocksOffset + b * cs);
        }

        pieces.Add((tableOffset, TableCodec.BigEndian.Encode(table, 0, table.Length)));
        byte[] refcounts = new byte[blocks * cs];
        for (long c = 0; c < clusters; c++)
        {
            RefcountBlock.Set(refcounts, c, s.RefcountOrder, 1);
        }

        pieces.Add((blocksOffset, refcounts));
        long end = l1Offset + (long)l1Entries * sizeof(ulong);
        if (preallocate)
        {
            end = AddPreallocatedTables(pieces, s, size, l1Entries, l1Offset, l1Offset + l1Clusters * cs);
        }
        else if (l1Entries > 0)
        {
            pieces.Add((l1Offset, new byte[l1Entries * sizeof(ulong)]));
        }

        NewImageFile.Write(path, pieces, end, options.Overwrite, handle => Fill(handle, s.Preallocation, end));
    }

    /// <summary>
    /// Lays out each L2 table followed by the data clusters it maps, and the L1 table that
    /// points to them; returns the end of the file. The entries are plain data entries, as
    /// QEMU writes them: the clusters read as zeros because the file does there.
    /// </summary>
    private static long AddPreallocatedTables(List<(long, byte[])> pieces, Settings s, long size, uint l1Entries, long l1Offset, long at)
    {
        long cs = 1L << s.ClusterBits;
        int l2Entries = (int)(cs / sizeof(ulong));
        var l1 = new ulong[l1Entries];
        long dataLeft = (size + cs - 1) / cs;
        for (int i = 0; i < l1Entries; i++)
        {
            var l2 = new ulong[l2Entries];
            long l2Offset = at;
            at += cs;
            for (int j = 0; j < l2Entries && dataLeft > 0; j++, dataLeft--)
            {
                l2[j] = Qcow2Entry.Copied | (ulong)at;
                at += cs;
            }

            l1[i] = Qcow2Entry.Copied | (ulong)l2Offset;
            pieces.Add((l2Offset, TableCodec.BigEndian.Encode(l2, 0, l2.Length)));
        }

        pieces.Add((l1Offset, TableCodec.BigEndian.Encode(l1, 0, l1.Length)));
        return at;
    }

    /// <summary>falloc reserves the file's blocks; full writes them (zeros already, so only the allocation matters).</summary>
    private static void Fill(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string preallocation, long end)
    {
        if (preallocation is "falloc" or "full")
        {
            if (Native.LibC.Fallocate(handle, 0, 0, end) != 0 && preallocation == "full")
            {
                byte[] zeros = new byte[1 << 20];
                for (long done = 0; done < end; done += zeros.Length)
                {
                    RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, end - done)), done);
                }
            }
        }
    }

    private static Settings ParseSettings(string path, IReadOnlyDictionary<string, string> o)
    {
        void Fail(string problem) => throw new BadImageException(path, problem);

        foreach (string key in o.Keys.Where(k => !KnownOptions.Contains(k)))
        {
            Fail($"unknown option '{key}' for the qcow2 format (known: cluster_size, compat, lazy_refcounts, refcount_bits, compression_type, preallocation)");
        }

        string Get(string key, string fallback) => o.TryGetValue(key, out string? v) ? v : fallback;

        bool Flag(string key)
        {
            string v = Get(key, "off");
            return v is "on" or "true" or "yes" ? true
                : v is "off" or "false" or "no" ? false
                : throw new BadImageException(path, $"option {key}={v} is invalid: must be on or off");
        }

        if (Flag("extended_l2"))
        {
            Fail("extended_l2=on is not supported in this version");
        }

        if (o.ContainsKey("data_file") || Flag("data_file_raw"))
        {
            Fail("data_file and data_file_raw are not supported in this version");
        }

        if (o.ContainsKey("encryption") || o.ContainsKey("encrypt.format"))
        {
            Fail("encrypted qcow2 images are not supported");
        }

        long clusterSize = ByteSize.TryParse(Get("cluster_size", "65536")) ?? -1;
        if (clusterSize < 512 || clusterSize > 2 << 20 || !BitOperations.IsPow2(clusterSize))
        {
            Fail($"option cluster_size={Get("cluster_size", "")} is invalid: must be a power of two from 512 to 2M");
        }

        int version = Get("compat", "1.1") switch
        {
            "1.1" or "v3" => 3,
            "0.10" or "v2" => 2,
            string v => throw new BadImageException(path, $"option compat={v} is invalid: must be 0.10 (v2) or 1.1 (v3)"),
        };
        bool lazy = Flag("lazy_refcounts");
        if (lazy && version == 2)
        {
            Fail("lazy_refcounts=on requires compat=1.1");
        }

        long refcountBits = long.TryParse(Get("refcount_bits", "16"), out long rb) ? rb : -1;
        if (refcountBits is < 1 or > 64 || !BitOperations.IsPow2(refcountBits))
        {
            Fail($"option refcount_bits={Get("refcount_bits", "")} is invalid: must be a power of two from 1 to 64");
        }

        if (version == 2 && refcountBits != 16)
        {
            Fail("refcount_bits other than 16 requires compat=1.1");
        }

        byte compression = Get("compression_type", "zlib") switch
        {
            "zlib" => Qcow2Header.CompressionZlib,
            "zstd" => Qcow2Header.CompressionZstd,
            string v => throw new BadImageException(path, $"option compression_type={v} is invalid: must be zlib or zstd"),
        };
        if (compression != Qcow2Header.CompressionZlib && version == 2)
        {
            Fail("compression_type=zstd requires compat=1.1");
        }

        string prealloc = Get("preallocation", "off");
        if (prealloc is not ("off" or "metadata" or "falloc" or "full"))
        {
            Fail($"option preallocation={prealloc} is invalid: must be off, metadata, falloc or full");
        }

        return new Settings(BitOperations.Log2((ulong)clusterSize), version, lazy, BitOperations.Log2((ulong)refcountBits), compression, prealloc);
    }
}
