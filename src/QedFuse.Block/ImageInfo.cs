namespace QedFuse.Block;

/// <summary>One layer's description, with the fields and names qemu-img info uses.</summary>
public sealed record ImageInfo
{
    public required string Filename { get; init; }
    public required string Format { get; init; }
    public required long VirtualSize { get; init; }

    /// <summary>Host bytes the image file occupies (st_blocks * 512), as qemu-img's "actual-size".</summary>
    public long ActualSize { get; init; }

    public long? ClusterSize { get; init; }

    /// <summary>The backing file name as stored in the image.</summary>
    public string? BackingFilename { get; init; }

    /// <summary>The backing file name resolved against the image's directory.</summary>
    public string? FullBackingFilename { get; init; }

    public string? BackingFilenameFormat { get; init; }

    public bool DirtyFlag { get; init; }

    /// <summary>qemu-img's "format-specific" data, keys in qemu-img's order (null: the format has none).</summary>
    public FormatSpecificInfo? FormatSpecific { get; init; }

    /// <summary>Internal snapshots, in table order.</summary>
    public IReadOnlyList<SnapshotInfo> Snapshots { get; init; } = [];
}

/// <summary>qemu-img info's "format-specific" object: a type and its fields (values are strings, numbers or booleans).</summary>
public sealed record FormatSpecificInfo(string Type, IReadOnlyList<KeyValuePair<string, object>> Data);

/// <summary>One internal snapshot as qemu-img info lists it.</summary>
public sealed record SnapshotInfo
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public ulong VmStateSize { get; init; }
    public long DateSeconds { get; init; }
    public long DateNanoseconds { get; init; }
    public ulong VmClockNanoseconds { get; init; }

    /// <summary>Null when the snapshot records none (qemu-img then omits it).</summary>
    public long? Icount { get; init; }
}
