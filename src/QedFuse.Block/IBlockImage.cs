namespace QedFuse.Block;

/// <summary>
/// One open disk image as its callers see it: a flat array of <see cref="VirtualSize"/> bytes.
/// This is the driver interface (QEMU's BlockDriver, crosvm's DiskFile): every format
/// implements it, and nothing above the block layer knows which format it talks to.
/// </summary>
/// <remarks>
/// Implementations are safe for concurrent use: reads and writes may arrive from many
/// threads at once. Offsets and lengths are bytes; a request must lie inside the virtual size.
/// I/O failures surface as <see cref="IOException"/> whose <c>HResult</c> is the errno when one
/// applies; a corrupt table entry surfaces as <see cref="CorruptImageException"/> (EIO).
/// </remarks>
public interface IBlockImage : IDisposable
{
    /// <summary>The path the image was opened by.</summary>
    string Path { get; }

    /// <summary>The driver's format name, as qemu-img spells it ("qed", "raw").</summary>
    string FormatName { get; }

    long VirtualSize { get; }

    bool IsReadOnly { get; }

    /// <summary>The image unallocated ranges fall through to, or null.</summary>
    IBlockImage? Backing { get; }

    /// <summary>Bytes of guest data stored in this layer (for st_blocks and "disk size").</summary>
    long AllocatedBytes { get; }

    void Read(long offset, Span<byte> buffer);

    void Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>
    /// Makes the range read as zeros. Whole clusters become zero clusters where the format has
    /// them; with <paramref name="unmap"/> the host space behind the range may also be released.
    /// </summary>
    void WriteZeroes(long offset, long length, bool unmap);

    /// <summary>The state of the run that starts at <paramref name="offset"/>, at most <paramref name="length"/> long.</summary>
    Allocation GetAllocation(long offset, long length);

    /// <summary>Makes every write acknowledged so far durable: data, then the metadata that points to it.</summary>
    void Flush();

    /// <summary>
    /// Flushes, and when no write is in flight records on disk that the metadata is consistent
    /// (QED clears its need-check flag). The mount's background flusher calls this periodically.
    /// </summary>
    void Checkpoint();

    /// <summary>The fields qemu-img info prints for this image (not its backing chain).</summary>
    ImageInfo GetInfo();

    /// <summary>
    /// Checks metadata consistency and optionally repairs it (qemu-img check semantics). An
    /// administrative operation: it must not run while other requests are in flight.
    /// </summary>
    CheckResult Check(CheckRepair repair);

    /// <summary>As <see cref="Check(CheckRepair)"/>, reporting how far the walk has got.</summary>
    CheckResult Check(CheckRepair repair, WorkProgress? progress) => Check(repair);

    // Administrative operations of the image tools (resize, rebase, commit). Like Check, they
    // must not run while other requests are in flight; the image is open read-write. A format
    // that cannot do one keeps the default, which refuses with one line naming the image.

    /// <summary>
    /// Changes the virtual size (qemu-img resize). Growing makes the new range read as the
    /// backing chain or zeros would; shrinking discards everything past the new end. Throws a
    /// <see cref="BadImageException"/> when the format cannot represent <paramref name="newSize"/>
    /// (QED: past its L1 table's reach; not a multiple of 512 bytes) or cannot shrink.
    /// </summary>
    void Resize(long newSize) =>
        throw new BadImageException(Path, $"the {FormatName} format does not support resizing");

    /// <summary>
    /// Records a new backing file name and format in the image header, durably (qemu-img
    /// rebase -u); null removes the backing file. The content is not touched, and the open
    /// <see cref="Backing"/> stays the old one until the image is reopened. The format is
    /// recorded as far as the image format can record one (QED: only "raw"). Refuses, changing
    /// nothing, a name that does not fit the header space.
    /// </summary>
    void SetBackingFile(string? name, string? format) =>
        throw new BadImageException(Path, $"the {FormatName} format has no backing file to change");

    /// <summary>
    /// Drops every allocation of this layer, so that all of it reads from the backing chain
    /// again (qemu-img commit empties the overlay this way). Crash-safe: an interruption leaves
    /// some clusters still allocated, never a corrupt image.
    /// </summary>
    void MakeEmpty() =>
        throw new BadImageException(Path, $"the {FormatName} format cannot be emptied");

    /// <summary>What the driver's metadata machinery did since open (zeros for formats without metadata).</summary>
    MetadataCounters Counters => default;

    /// <summary>
    /// For a read-only image that another program may change (a mount with force_share): forget
    /// every cached piece of metadata and read it again from the file, so the next request sees
    /// the image as it is on disk now. That covers header fields that can change (virtual size,
    /// backing file name and format), the top-level and second-level tables (QED: L1/L2; qcow2:
    /// L1/L2, refcounts, snapshot table), and the backing chain (reloaded in turn, or reopened
    /// when its name changed). Reads may run concurrently and must see either the old or the new
    /// metadata whole, never a mix within one table walk; a reload that fails (the file is caught
    /// mid-update, say) throws and leaves the previous metadata in use. Writable images refuse
    /// (<see cref="InvalidOperationException"/>): they own their file.
    /// </summary>
    void Reload() => throw new NotSupportedException($"{Path}: the {FormatName} driver cannot reload its metadata");
}
