using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>
/// Mirror of libfuse 3.14's <c>struct fuse_lowlevel_ops</c> (x86_64: 44 pointers, 352 bytes).
/// Field order is the ABI: it must match the header exactly, which the layout test pins
/// against gcc. Unused slots stay NULL so libfuse answers them with its defaults
/// (ENOSYS for most, which the kernel remembers per connection).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct FuseLowLevelOps
{
    public delegate* unmanaged<nint, FuseConnInfo*, void> Init;
    public delegate* unmanaged<nint, void> Destroy;
    public delegate* unmanaged<nint, ulong, byte*, void> Lookup;
    public nint Forget;
    public delegate* unmanaged<nint, ulong, FuseFileInfo*, void> GetAttr;
    public delegate* unmanaged<nint, ulong, Stat*, int, FuseFileInfo*, void> SetAttr;
    public nint ReadLink;
    public nint MkNod;
    public nint MkDir;
    public nint Unlink;
    public nint RmDir;
    public nint SymLink;
    public nint Rename;
    public nint Link;
    public delegate* unmanaged<nint, ulong, FuseFileInfo*, void> Open;
    public delegate* unmanaged<nint, ulong, nuint, long, FuseFileInfo*, void> Read;
    public delegate* unmanaged<nint, ulong, byte*, nuint, long, FuseFileInfo*, void> Write;
    public delegate* unmanaged<nint, ulong, FuseFileInfo*, void> Flush;
    public delegate* unmanaged<nint, ulong, FuseFileInfo*, void> Release;
    public delegate* unmanaged<nint, ulong, int, FuseFileInfo*, void> Fsync;
    public nint OpenDir;
    public delegate* unmanaged<nint, ulong, nuint, long, FuseFileInfo*, void> ReadDir;
    public nint ReleaseDir;
    public nint FsyncDir;
    public delegate* unmanaged<nint, ulong, void> StatFs;
    public nint SetXattr;
    public nint GetXattr;
    public nint ListXattr;
    public nint RemoveXattr;
    public nint Access;
    public nint Create;
    public nint GetLk;
    public nint SetLk;
    public nint Bmap;
    public nint Ioctl;
    public nint Poll;
    /// <summary>Left NULL on purpose: a write_buf op makes libfuse want SPLICE_READ.</summary>
    public nint WriteBuf;
    public nint RetrieveReply;
    public nint ForgetMulti;
    public nint Flock;
    public delegate* unmanaged<nint, ulong, int, long, long, FuseFileInfo*, void> Fallocate;
    public nint ReadDirPlus;
    public nint CopyFileRange;
    public delegate* unmanaged<nint, ulong, long, int, FuseFileInfo*, void> Lseek;
}
