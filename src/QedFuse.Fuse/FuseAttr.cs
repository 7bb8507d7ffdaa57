namespace QedFuse.Fuse;

/// <summary>
/// Attributes of an inode, as returned by lookup, getattr and setattr (a subset of
/// <c>struct stat</c>). Keep <see cref="MTime"/> stable while the content does not
/// change: with AUTO_INVAL_DATA the kernel drops its page cache whenever it sees a new
/// mtime in a getattr reply.
/// </summary>
public struct FuseAttr
{
    /// <summary>Inode number; 1 is the root directory. Must not be 0.</summary>
    public ulong Ino;
    /// <summary>File type and permission bits, e.g. <c>S_IFREG | 0644</c> (see <see cref="FuseMode"/>).</summary>
    public uint Mode;
    public uint NLink;
    public uint Uid;
    public uint Gid;
    public long Size;
    /// <summary>Allocated 512-byte blocks (what <c>du</c> shows).</summary>
    public long Blocks;
    /// <summary>Preferred I/O size (st_blksize); 0 lets the binding pick 4096.</summary>
    public int BlockSize;
    public FuseTimespec ATime;
    public FuseTimespec MTime;
    public FuseTimespec CTime;
}
