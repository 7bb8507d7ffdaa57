using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using QedFuse.Fuse.Native;

namespace QedFuse.Fuse;

/// <summary>
/// The native entry points libfuse calls (one per op we implement). Each finds its
/// session through fuse_req_userdata, calls the <see cref="IFuseFileSystem"/>, and
/// replies exactly once. No exception may escape (that would kill the process and leave
/// a dead mount), so each body catches everything and replies with an errno.
/// </summary>
internal static unsafe class FuseOperations
{
    /// <summary>Initial size of a worker's read/readdir buffer: one max-size request.</summary>
    private const nuint DefaultBufferSize = 1024 * 1024;

    // Per worker thread, reused by every read and readdir: no allocation per request
    // (fresh pages are expensive on the target VMs). Freed by the worker on exit.
    [ThreadStatic] private static byte* t_buffer;
    [ThreadStatic] private static nuint t_capacity;

    /// <summary>The ops table with every slot we implement filled in.</summary>
    public static FuseLowLevelOps Create() => new()
    {
        Init = &OnInit,
        Destroy = &OnDestroy,
        Lookup = &OnLookup,
        GetAttr = &OnGetAttr,
        SetAttr = &OnSetAttr,
        Open = &OnOpen,
        Read = &OnRead,
        Write = &OnWrite,
        Flush = &OnFlush,
        Release = &OnRelease,
        Fsync = &OnFsync,
        ReadDir = &OnReadDir,
        StatFs = &OnStatFs,
        Fallocate = &OnFallocate,
        Lseek = &OnLseek,
    };

    /// <summary>Frees the calling thread's buffer; workers call it when they exit.</summary>
    public static void FreeThreadBuffer()
    {
        NativeMemory.AlignedFree(t_buffer);
        t_buffer = null;
        t_capacity = 0;
    }

    private static byte* ThreadBuffer(nuint size)
    {
        if (size > t_capacity)
        {
            FreeThreadBuffer();
            nuint capacity = Math.Max(size, DefaultBufferSize);
            t_buffer = (byte*)NativeMemory.AlignedAlloc(capacity, 4096);
            t_capacity = capacity;
        }
        return t_buffer;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FuseSession Session(nint req) => FuseSession.FromUserData(LibFuse.fuse_req_userdata(req));

    internal static void FillStat(Stat* st, in FuseAttr a)
    {
        *st = default;
        st->Ino = a.Ino;
        st->Mode = a.Mode;
        st->NLink = a.NLink == 0 ? 1u : a.NLink;
        st->Uid = a.Uid;
        st->Gid = a.Gid;
        st->Size = a.Size;
        st->Blocks = a.Blocks;
        st->BlkSize = a.BlockSize == 0 ? 4096 : a.BlockSize;
        st->ATime = new Timespec { Sec = a.ATime.Seconds, NSec = a.ATime.Nanoseconds };
        st->MTime = new Timespec { Sec = a.MTime.Seconds, NSec = a.MTime.Nanoseconds };
        st->CTime = new Timespec { Sec = a.CTime.Seconds, NSec = a.CTime.Nanoseconds };
    }

    private static int ReplyAttr(nint req, FuseSession session, int result, in FuseAttr attr)
    {
        if (result < 0) return Errno.FromResult(result);
        Stat st;
        FillStat(&st, attr);
        LibFuse.fuse_reply_attr(req, &st, session.Options.AttrTimeout);
        return 0;
    }

    [UnmanagedCallersOnly]
    private static void OnInit(nint userdata, FuseConnInfo* conn)
    {
        // No reply here: libfuse answers FUSE_INIT itself after we return.
        try
        {
            FuseSession session = FuseSession.FromUserData(userdata);
            session.Negotiate(conn);
        }
        catch (Exception e)
        {
            FuseSession.ReportCallbackFailure("init", e);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnDestroy(nint userdata)
    {
        try
        {
            FuseSession.FromUserData(userdata).FileSystem.Destroy();
        }
        catch (Exception e)
        {
            FuseSession.ReportCallbackFailure("destroy", e);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnLookup(nint req, ulong parent, byte* name)
    {
        int err;
        try
        {
            FuseSession session = Session(req);
            var span = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name);
            int result = session.FileSystem.Lookup(parent, span, out FuseAttr attr);
            if (result >= 0)
            {
                FuseEntryParam e = default;
                e.Ino = attr.Ino;
                FillStat(&e.Attr, attr);
                e.AttrTimeout = session.Options.AttrTimeout;
                e.EntryTimeout = session.Options.EntryTimeout;
                LibFuse.fuse_reply_entry(req, &e);
                return;
            }
            err = Errno.FromResult(result);
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnGetAttr(nint req, ulong ino, FuseFileInfo* fi)
    {
        int err;
        try
        {
            FuseSession session = Session(req);
            int result = session.FileSystem.GetAttr(ino, out FuseAttr attr);
            if ((err = ReplyAttr(req, session, result, attr)) == 0) return;
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnSetAttr(nint req, ulong ino, Stat* attr, int toSet, FuseFileInfo* fi)
    {
        int err;
        try
        {
            FuseSession session = Session(req);
            var request = new FuseSetAttr
            {
                Fields = (FuseSetAttrFields)toSet,
                Mode = attr->Mode,
                Uid = attr->Uid,
                Gid = attr->Gid,
                Size = attr->Size,
                ATime = new FuseTimespec(attr->ATime.Sec, attr->ATime.NSec),
                MTime = new FuseTimespec(attr->MTime.Sec, attr->MTime.NSec),
                FileHandle = fi == null ? null : fi->Fh,
            };
            int result = session.FileSystem.SetAttr(ino, request, out FuseAttr after);
            if ((err = ReplyAttr(req, session, result, after)) == 0) return;
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnOpen(nint req, ulong ino, FuseFileInfo* fi)
    {
        int err;
        try
        {
            FuseSession session = Session(req);
            var options = new FuseOpenOptions();
            int result = session.FileSystem.Open(ino, fi->Flags, ref options);
            if (result >= 0)
            {
                fi->Fh = options.FileHandle;
                uint bits = fi->BitFields & ~(FuseFileInfo.DirectIoBit | FuseFileInfo.KeepCacheBit | FuseFileInfo.NonSeekableBit);
                if (options.DirectIo) bits |= FuseFileInfo.DirectIoBit;
                if (options.KeepCache) bits |= FuseFileInfo.KeepCacheBit;
                if (options.NonSeekable) bits |= FuseFileInfo.NonSeekableBit;
                fi->BitFields = bits;
                if (LibFuse.fuse_reply_open(req, fi) == -Errno.ENOENT)
                {
                    // The opener was interrupted and the kernel dropped the request: libfuse
                    // will not send release for it, so release here to balance the open.
                    session.FileSystem.Release(ino, options.FileHandle);
                }
                return;
            }
            err = Errno.FromResult(result);
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnRead(nint req, ulong ino, nuint size, long off, FuseFileInfo* fi)
    {
        int err;
        try
        {
            FuseSession session = Session(req);
            if (!session.FileSystem.Admit(ino, false, checked((int)size), new FuseRequestHandoff(session, req, ino, fi->Fh, off, (int)size, null)))
            {
                return; // deferred: answered later
            }

            byte* buffer = ThreadBuffer(size);
            int result = session.FileSystem.Read(ino, fi->Fh, off, new Span<byte>(buffer, checked((int)size)));
            if (result >= 0 && (nuint)result <= size)
            {
                LibFuse.fuse_reply_buf(req, buffer, (nuint)result);
                return;
            }
            err = Errno.FromResult(result < 0 ? result : -Errno.EIO);
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnWrite(nint req, ulong ino, byte* buf, nuint size, long off, FuseFileInfo* fi)
    {
        int err;
        try
        {
            FuseSession session = Session(req);
            if (!session.FileSystem.Admit(ino, true, checked((int)size), new FuseRequestHandoff(session, req, ino, fi->Fh, off, (int)size, buf)))
            {
                return; // deferred: answered later
            }

            int result = session.FileSystem.Write(ino, fi->Fh, off, new ReadOnlySpan<byte>(buf, checked((int)size)));
            if (result >= 0 && (nuint)result <= size)
            {
                LibFuse.fuse_reply_write(req, (nuint)result);
                return;
            }
            err = Errno.FromResult(result < 0 ? result : -Errno.EIO);
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnFlush(nint req, ulong ino, FuseFileInfo* fi)
    {
        try
        {
            ReplyStatus(req, Session(req).FileSystem.Flush(ino, fi->Fh));
        }
        catch (Exception e)
        {
            LibFuse.fuse_reply_err(req, Errno.FromException(e));
        }
    }

    [UnmanagedCallersOnly]
    private static void OnRelease(nint req, ulong ino, FuseFileInfo* fi)
    {
        try
        {
            ReplyStatus(req, Session(req).FileSystem.Release(ino, fi->Fh));
        }
        catch (Exception e)
        {
            LibFuse.fuse_reply_err(req, Errno.FromException(e));
        }
    }

    [UnmanagedCallersOnly]
    private static void OnFsync(nint req, ulong ino, int datasync, FuseFileInfo* fi)
    {
        try
        {
            ReplyStatus(req, Session(req).FileSystem.Fsync(ino, fi->Fh, datasync != 0));
        }
        catch (Exception e)
        {
            LibFuse.fuse_reply_err(req, Errno.FromException(e));
        }
    }

    [UnmanagedCallersOnly]
    private static void OnReadDir(nint req, ulong ino, nuint size, long off, FuseFileInfo* fi)
    {
        int err;
        try
        {
            FuseSession session = Session(req);
            byte* buffer = ThreadBuffer(size);
            var entries = new FuseDirectoryBuffer(req, buffer, size);
            int result = session.FileSystem.ReadDir(ino, fi->Fh, off, ref entries);
            if (result >= 0)
            {
                LibFuse.fuse_reply_buf(req, buffer, entries.Used);
                return;
            }
            err = Errno.FromResult(result);
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnStatFs(nint req, ulong ino)
    {
        int err;
        try
        {
            int result = Session(req).FileSystem.StatFs(ino, out FuseStatFs s);
            if (result >= 0)
            {
                StatVfs v = default;
                v.BSize = s.BlockSize;
                v.FrSize = s.FragmentSize == 0 ? s.BlockSize : s.FragmentSize;
                v.Blocks = s.Blocks;
                v.BFree = s.BlocksFree;
                v.BAvail = s.BlocksAvailable;
                v.Files = s.Files;
                v.FFree = s.FilesFree;
                v.FAvail = s.FilesFree;
                v.NameMax = s.NameMax;
                LibFuse.fuse_reply_statfs(req, &v);
                return;
            }
            err = Errno.FromResult(result);
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    [UnmanagedCallersOnly]
    private static void OnFallocate(nint req, ulong ino, int mode, long offset, long length, FuseFileInfo* fi)
    {
        try
        {
            ReplyStatus(req, Session(req).FileSystem.Fallocate(ino, fi->Fh, mode, offset, length));
        }
        catch (Exception e)
        {
            LibFuse.fuse_reply_err(req, Errno.FromException(e));
        }
    }

    [UnmanagedCallersOnly]
    private static void OnLseek(nint req, ulong ino, long off, int whence, FuseFileInfo* fi)
    {
        int err;
        try
        {
            long result = Session(req).FileSystem.Lseek(ino, fi->Fh, off, whence);
            if (result >= 0)
            {
                LibFuse.fuse_reply_lseek(req, result);
                return;
            }
            err = Errno.FromResult(result);
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        LibFuse.fuse_reply_err(req, err);
    }

    /// <summary>Replies to an operation whose only answer is success or an errno.</summary>
    private static void ReplyStatus(nint req, int result) =>
        LibFuse.fuse_reply_err(req, result >= 0 ? 0 : Errno.FromResult(result));
}
