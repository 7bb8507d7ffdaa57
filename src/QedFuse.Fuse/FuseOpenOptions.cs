namespace QedFuse.Fuse;

/// <summary>
/// Per-open choices a file system makes in <see cref="IFuseFileSystem.Open"/>; they go
/// back to the kernel in the open reply.
/// </summary>
public struct FuseOpenOptions
{
    /// <summary>Opaque value handed back as <c>fh</c> to read/write/flush/release of this open.</summary>
    public ulong FileHandle;

    /// <summary>
    /// Bypass the page cache for this open: reads and writes go to the file system in
    /// large requests (up to max_write), but shared writable mmap fails with ENODEV. A
    /// sensible policy is DirectIo only when the caller passed O_DIRECT
    /// (<see cref="IsODirect"/>).
    /// </summary>
    public bool DirectIo;

    /// <summary>Keep the page cache from earlier opens (the content did not change behind the kernel's back).</summary>
    public bool KeepCache;

    /// <summary>The file is not seekable (pipes, streams).</summary>
    public bool NonSeekable;

    /// <summary>O_DIRECT (0x4000 on x86_64) is set in open flags.</summary>
    public static bool IsODirect(int flags) => (flags & 0x4000) != 0;

    /// <summary>The access mode of open flags: 0 O_RDONLY, 1 O_WRONLY, 2 O_RDWR.</summary>
    public static int AccessMode(int flags) => flags & 3;
}
