using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// Everything an open reads from a qcow2 image before serving requests, validated: the header,
/// its extensions and backing name, the geometry, the active L1 table and the snapshot table.
/// </summary>
internal sealed class Qcow2Layout
{
    private Qcow2Layout(Qcow2Header header, Qcow2HeaderExtensions extensions, ulong[] l1, IReadOnlyList<Qcow2Snapshot> snapshots, long snapshotTableBytes)
    {
        SnapshotTableBytes = snapshotTableBytes;
        Header = header;
        Extensions = extensions;
        Geometry = new Qcow2Geometry(header);
        L1 = l1;
        Snapshots = snapshots;
    }

    /// <summary>The header as on disk; changes when the driver rewrites a feature bit.</summary>
    public Qcow2Header Header { get; set; }

    public Qcow2HeaderExtensions Extensions { get; }

    public Qcow2Geometry Geometry { get; }

    public ulong[] L1 { get; }

    public IReadOnlyList<Qcow2Snapshot> Snapshots { get; }

    /// <summary>Bytes the snapshot table occupies from snapshots_offset.</summary>
    public long SnapshotTableBytes { get; }

    public static Qcow2Layout Read(HostFile file, string path)
    {
        long length = file.Length;
        byte[] head = new byte[Qcow2Header.V3SizeWithCompressionType];
        int headBytes = (int)Math.Min(length, head.Length);
        file.ReadExactly(0, head.AsSpan(0, headBytes));
        Qcow2Header header = Qcow2Header.Parse(head.AsSpan(0, headBytes), path, length);

        byte[] firstCluster = new byte[header.ClusterSize];
        file.ReadExactly(0, firstCluster);
        Qcow2HeaderExtensions extensions = Qcow2HeaderExtensions.Parse(header, firstCluster, path);

        var l1 = new ulong[header.L1Size];
        TableCodec.BigEndian.Read(file, (long)header.L1TableOffset, l1);
        IReadOnlyList<Qcow2Snapshot> snapshots = Qcow2Snapshot.ParseTable(file, header, path, out long snapshotTableBytes);
        return new Qcow2Layout(header, extensions, l1, snapshots, snapshotTableBytes);
    }

    /// <summary>qemu-img info's view of this layer.</summary>
    public ImageInfo Describe(string path, long actualSize)
    {
        Qcow2Header h = Header;
        var data = new List<KeyValuePair<string, object>>
        {
            new("compat", h.Version == 2 ? "0.10" : "1.1"),
            new("compression-type", h.CompressionType == Qcow2Header.CompressionZstd ? "zstd" : "zlib"),
        };
        if (h.Version == 3)
        {
            data.Add(new("lazy-refcounts", h.LazyRefcounts));
        }

        data.Add(new("refcount-bits", Geometry.RefcountBits));
        if (h.Version == 3)
        {
            data.Add(new("corrupt", h.IsCorrupt));
            data.Add(new("extended-l2", (h.IncompatibleFeatures & Qcow2Header.IncompatExtendedL2) != 0));
        }

        string? backing = Extensions.BackingName;
        return new ImageInfo
        {
            Filename = path,
            Format = Qcow2Format.FormatName,
            VirtualSize = Geometry.VirtualSize,
            ActualSize = actualSize,
            ClusterSize = Geometry.ClusterSize,
            BackingFilename = backing,
            FullBackingFilename = backing is null ? null : ImageOpener.JoinBackingName(path, backing),
            BackingFilenameFormat = Extensions.BackingFormatName,
            DirtyFlag = h.IsDirty,
            FormatSpecific = new FormatSpecificInfo("qcow2", data),
            Snapshots = Snapshots.Select(s => new SnapshotInfo
            {
                Id = s.Id,
                Name = s.Name,
                VmStateSize = s.VmStateSize,
                DateSeconds = s.DateSeconds,
                DateNanoseconds = s.DateNanoseconds,
                VmClockNanoseconds = s.VmClockNanoseconds,
                Icount = s.Icount,
            }).ToList(),
        };
    }
}
