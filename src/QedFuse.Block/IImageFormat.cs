namespace QedFuse.Block;

/// <summary>
/// A format driver: recognises, opens and creates images of one format. Adding a format means
/// adding one implementation and listing it in <see cref="ImageOpener"/>; no caller changes.
/// </summary>
public interface IImageFormat
{
    /// <summary>The format name, as qemu-img spells it.</summary>
    string Name { get; }

    /// <summary>Whether an image that starts with <paramref name="head"/> (up to 512 bytes) is of this format.</summary>
    bool Probe(ReadOnlySpan<byte> head);

    /// <summary>Opens the image; <paramref name="opener"/> opens its backing chain.</summary>
    IBlockImage Open(string path, ImageOpenOptions options, ImageOpener opener);

    /// <summary>Creates a new image file; <paramref name="opener"/> opens the backing file to learn its size.</summary>
    void Create(string path, ImageCreateOptions options, ImageOpener opener);
}

/// <summary>How to open an image.</summary>
public sealed record ImageOpenOptions
{
    public bool ReadOnly { get; init; }

    /// <summary>Format name to insist on; null probes.</summary>
    public string? Format { get; init; }

    /// <summary>
    /// Open for writing without the automatic repair of an image whose need-check flag is set.
    /// Only the check verb uses this, so that it can report before it repairs.
    /// </summary>
    public bool SkipRepair { get; init; }

    /// <summary>
    /// Open this layer alone, without its backing chain (unallocated ranges then read as zeros):
    /// for rewriting the header of an image whose backing file is gone (rebase -u).
    /// </summary>
    public bool SkipBacking { get; init; }

    /// <summary>Open even when another program holds the image for writing (read-only opens only).</summary>
    public bool ForceShare { get; init; }

    /// <summary>Memory for cached metadata tables (QED: the L2 cache), in bytes.</summary>
    public long CacheBytes { get; init; } = DefaultCacheBytes;

    public const long DefaultCacheBytes = 32L << 20;

    /// <summary>Sees (and may fail) every I/O on the image file: fault injection in tests.</summary>
    internal IHostFileHook? HostFileHook { get; init; }

    /// <summary>Receives one-line notices such as "repaired 3 corruptions".</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>How to create an image; format-specific settings travel as qemu-img's -o key=value pairs.</summary>
public sealed record ImageCreateOptions
{
    /// <summary>Virtual size in bytes; null takes the backing file's size.</summary>
    public long? Size { get; init; }

    public string? BackingFile { get; init; }

    public string? BackingFormat { get; init; }

    public IReadOnlyDictionary<string, string> FormatOptions { get; init; } = new Dictionary<string, string>();

    /// <summary>Replace an existing file instead of refusing.</summary>
    public bool Overwrite { get; init; }
}
