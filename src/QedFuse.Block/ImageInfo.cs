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
}
