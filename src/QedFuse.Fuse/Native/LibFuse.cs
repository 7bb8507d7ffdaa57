using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>
/// P/Invokes into libfuse3.so.3. Every symbol bound here has a single version
/// (FUSE_3.0) in libfuse 3.14, so binding by plain name is exact. The versioned
/// multi-threaded loop (fuse_session_loop_mt@FUSE_3.0/3.2/3.12) is deliberately not
/// bound: <see cref="FuseSession"/> runs its own threads around receive/process_buf.
/// </summary>
internal static unsafe partial class LibFuse
{
    private const string Lib = "libfuse3.so.3";

    [LibraryImport(Lib)]
    public static partial nint fuse_session_new(FuseArgs* args, FuseLowLevelOps* op, nuint opSize, nint userdata);

    [LibraryImport(Lib)]
    public static partial int fuse_session_mount(nint se, byte* mountpoint);

    [LibraryImport(Lib)]
    public static partial void fuse_session_unmount(nint se);

    [LibraryImport(Lib)]
    public static partial void fuse_session_destroy(nint se);

    [LibraryImport(Lib)]
    public static partial int fuse_session_exited(nint se);

    [LibraryImport(Lib)]
    public static partial int fuse_session_receive_buf(nint se, FuseBuf* buf);

    [LibraryImport(Lib)]
    public static partial void fuse_session_process_buf(nint se, FuseBuf* buf);

    [LibraryImport(Lib)]
    public static partial void fuse_opt_free_args(FuseArgs* args);

    [LibraryImport(Lib)]
    public static partial nint fuse_req_userdata(nint req);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_err(nint req, int err);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_entry(nint req, FuseEntryParam* e);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_attr(nint req, Stat* attr, double attrTimeout);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_open(nint req, FuseFileInfo* fi);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_write(nint req, nuint count);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_buf(nint req, byte* buf, nuint size);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_statfs(nint req, StatVfs* stbuf);

    [LibraryImport(Lib)]
    public static partial int fuse_reply_lseek(nint req, long off);

    [LibraryImport(Lib)]
    public static partial int fuse_lowlevel_notify_inval_inode(nint se, ulong ino, long off, long len);

    [LibraryImport(Lib)]
    public static partial nuint fuse_add_direntry(nint req, byte* buf, nuint bufsize, byte* name, Stat* stbuf, long off);
}
