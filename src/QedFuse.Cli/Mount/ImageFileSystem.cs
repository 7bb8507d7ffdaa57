using QedFuse.Block;
using QedFuse.Block.Native;
using QedFuse.Cli.Live;
using QedFuse.Fuse;

namespace QedFuse.Cli.Mount;

/// <summary>
/// The adapter between the two libraries: one directory (inode 1) holding one regular file
/// per image (inodes 2..), each read and written through its <see cref="IBlockImage"/>.
/// The file behaves like a raw disk image of fixed size: writes past the end fail with
/// ENOSPC instead of growing it.
/// </summary>
internal sealed class ImageFileSystem : IFuseFileSystem
{
    private const ulong RootIno = 1;

    private readonly MountedImage[] _images;
    private readonly uint _uid;
    private readonly uint _gid;
    private readonly FuseTimespec _mountTime = FuseTimespec.FromDateTimeOffset(DateTimeOffset.UtcNow);

    public ImageFileSystem(IReadOnlyList<IBlockImage> images)
    {
        _images = images.Select((img, i) => new MountedImage((ulong)i + 2, MountedImage.NameFor(img.Path), img)).ToArray();
        (_uid, _gid) = ProcessIdentity.Current();
    }

    public IReadOnlyList<MountedImage> Images => _images;

    /// <summary>Revalidate each open against the image file (-o ro,force_share: another program writes it).</summary>
    public bool RevalidateOnOpen { get; init; }

    /// <summary>The session serving this file system, once mounted: for telling the kernel to drop its caches.</summary>
    public FuseSession? Session { get; set; }

    public int Lookup(ulong parent, ReadOnlySpan<byte> name, out FuseAttr attr)
    {
        attr = default;
        if (parent != RootIno)
        {
            return -Errno.ENOTDIR;
        }

        foreach (var m in _images)
        {
            if (name.SequenceEqual(m.FileNameUtf8))
            {
                attr = FileAttr(m);
                return 0;
            }
        }

        return -Errno.ENOENT;
    }

    public int GetAttr(ulong ino, out FuseAttr attr)
    {
        if (ino == RootIno)
        {
            attr = new FuseAttr
            {
                Ino = RootIno,
                Mode = FuseMode.Directory | 0x1ED, // 0755
                NLink = 2,
                Uid = _uid,
                Gid = _gid,
                ATime = _mountTime,
                MTime = _mountTime,
                CTime = _mountTime,
            };
            return 0;
        }

        attr = default;
        if (Find(ino) is not { } m)
        {
            return -Errno.ENOENT;
        }

        attr = FileAttr(m);
        return 0;
    }

    public int SetAttr(ulong ino, in FuseSetAttr request, out FuseAttr attr)
    {
        attr = default;
        if (Find(ino) is not { } m)
        {
            return ino == RootIno ? -Errno.EPERM : -Errno.ENOENT;
        }

        // A raw disk has a fixed size: truncate to the current size is a no-op, anything else
        // is refused. Time updates (touch) are accepted and ignored; ownership and mode are not ours to change.
        if (request.Has(FuseSetAttrFields.Size) && request.Size != m.Image.VirtualSize)
        {
            return -Errno.EPERM;
        }

        if (request.Has(FuseSetAttrFields.Mode) || request.Has(FuseSetAttrFields.Uid) || request.Has(FuseSetAttrFields.Gid))
        {
            return -Errno.EPERM;
        }

        attr = FileAttr(m);
        return 0;
    }

    public int ReadDir(ulong ino, ulong fh, long offset, ref FuseDirectoryBuffer entries)
    {
        if (ino != RootIno)
        {
            return -Errno.ENOTDIR;
        }

        // Offsets: 1 after ".", 2 after "..", 3+i after image i.
        for (long i = offset; i < 2 + _images.Length; i++)
        {
            bool added = i switch
            {
                0 => entries.TryAdd(".", RootIno, FuseMode.Directory, 1),
                1 => entries.TryAdd("..", RootIno, FuseMode.Directory, 2),
                _ => entries.TryAdd(_images[i - 2].FileNameUtf8, _images[i - 2].Ino, FuseMode.Regular, i + 1),
            };
            if (!added)
            {
                break;
            }
        }

        return 0;
    }

    public int Open(ulong ino, int flags, ref FuseOpenOptions options)
    {
        if (Find(ino) is not { } m)
        {
            return ino == RootIno ? -Errno.EISDIR : -Errno.ENOENT;
        }

        if (m.Image.IsReadOnly && FuseOpenOptions.AccessMode(flags) != 0)
        {
            return -Errno.EROFS;
        }

        // O_DIRECT opens bypass the page cache (large requests); others use it, which keeps
        // shared writable mmap working. Nobody but us changes the image, so the cache stays
        // valid, unless another program writes it (force_share): then a changed image drops it.
        bool changed = RevalidateOnOpen && Revalidate(m);
        options.DirectIo = FuseOpenOptions.IsODirect(flags);
        options.KeepCache = !options.DirectIo && !changed;
        options.FileHandle = ino;
        return 0;
    }

    public bool Admit(ulong ino, bool write, int bytes, in FuseRequestHandoff request) =>
        Find(ino) is not { } m || m.Throttle.Admit(write, bytes, request);

    public int Read(ulong ino, ulong fh, long offset, Span<byte> buffer)
    {
        if (Find(ino) is not { } m)
        {
            return -Errno.ENOENT;
        }

        long size = m.Image.VirtualSize;
        if (offset >= size)
        {
            return 0;
        }

        long started = IoStatistics.Timestamp();
        int n = (int)Math.Min(buffer.Length, size - offset);
        try
        {
            m.Image.Read(offset, buffer[..n]);
            m.Stats.Read.Done(n, started);
            return n;
        }
        catch (Exception e)
        {
            m.Stats.Read.Fail();
            return Fail(m, e);
        }
    }

    public int Write(ulong ino, ulong fh, long offset, ReadOnlySpan<byte> data)
    {
        if (Find(ino) is not { } m)
        {
            return -Errno.ENOENT;
        }

        long size = m.Image.VirtualSize;
        if (offset >= size && data.Length > 0)
        {
            m.Stats.Write.Fail();
            return -Errno.ENOSPC;
        }

        long started = IoStatistics.Timestamp();
        int n = (int)Math.Min(data.Length, size - offset);
        try
        {
            m.Image.Write(offset, data[..n]);
            m.Stats.Write.Done(n, started);
            return n;
        }
        catch (Exception e)
        {
            m.Stats.Write.Fail();
            return Fail(m, e);
        }
        finally
        {
            m.NoteWriteDone();
        }
    }

    public int Flush(ulong ino, ulong fh) => Find(ino) is { } m ? FlushIfWritten(m) : 0;

    public int Fsync(ulong ino, ulong fh, bool dataOnly)
    {
        if (Find(ino) is not { } m)
        {
            return -Errno.ENOENT;
        }

        return m.Image.IsReadOnly ? 0 : FlushImage(m);
    }

    public int Fallocate(ulong ino, ulong fh, int mode, long offset, long length)
    {
        if (Find(ino) is not { } m)
        {
            return -Errno.ENOENT;
        }

        bool punch = mode == (Linux.FallocPunchHole | Linux.FallocKeepSize);
        bool zero = (mode & ~Linux.FallocKeepSize) == Linux.FallocZeroRange;
        if (!punch && !zero)
        {
            return -Errno.EOPNOTSUPP;
        }

        long size = m.Image.VirtualSize;
        if (offset < 0 || length <= 0)
        {
            return -Errno.EINVAL;
        }

        // The file cannot grow: without KEEP_SIZE a range reaching past the end would make the
        // kernel extend its cached size after our success, so it fails like a full disk.
        if ((mode & Linux.FallocKeepSize) == 0 && (offset >= size || length > size - offset))
        {
            return -Errno.ENOSPC;
        }

        if (offset >= size)
        {
            return 0;
        }

        long n = Math.Min(length, size - offset);
        try
        {
            // As QEMU accounts them: a discard is an unmap, a write of zeros a write.
            return Counted(m, punch ? m.Stats.Unmap : m.Stats.Write, n, () => m.Image.WriteZeroes(offset, n, unmap: punch));
        }
        finally
        {
            m.NoteWriteDone();
        }
    }

    public long Lseek(ulong ino, ulong fh, long offset, int whence)
    {
        if (Find(ino) is not { } m)
        {
            return -Errno.ENOENT;
        }

        if (whence is not (Linux.SeekData or Linux.SeekHole))
        {
            return -Errno.EINVAL;
        }

        if (offset < 0 || offset >= m.Image.VirtualSize)
        {
            return -Errno.ENXIO;
        }

        try
        {
            long at = whence == Linux.SeekData ? ChainMap.NextData(m.Image, offset) : ChainMap.NextHole(m.Image, offset);
            return at < 0 ? -Errno.ENXIO : Math.Max(at, offset);
        }
        catch (Exception e)
        {
            return Fail(m, e);
        }
    }

    public int StatFs(ulong ino, out FuseStatFs stat)
    {
        const ulong block = 4096;
        ulong total = (ulong)_images.Sum(m => m.Image.VirtualSize) / block;
        ulong used = (ulong)_images.Sum(m => m.Image.AllocatedBytes) / block;
        stat = new FuseStatFs
        {
            BlockSize = block,
            FragmentSize = block,
            Blocks = total,
            BlocksFree = total > used ? total - used : 0,
            BlocksAvailable = total > used ? total - used : 0,
            Files = (ulong)_images.Length + 1,
            NameMax = 255,
        };
        return 0;
    }

    /// <summary>flush(2) comes with every close: make it durable only when something was written.</summary>
    private static int FlushIfWritten(MountedImage m) =>
        m.Image.IsReadOnly || !m.HasUnflushedWrites ? 0 : FlushImage(m);

    /// <summary>Flushes; on success every write finished before the start counts as flushed.</summary>
    private static int FlushImage(MountedImage m)
    {
        long done = m.WritesDone;
        int r = Counted(m, m.Stats.Flush, 0, m.Image.Flush);
        if (r == 0)
        {
            m.NoteFlushed(done);
        }

        return r;
    }

    private FuseAttr FileAttr(MountedImage m) => new()
    {
        Ino = m.Ino,
        Mode = FuseMode.Regular | (m.Image.IsReadOnly ? 0x124u : 0x1A4u), // 0444 / 0644
        NLink = 1,
        Uid = _uid,
        Gid = _gid,
        Size = m.Image.VirtualSize,
        Blocks = (m.Image.AllocatedBytes + 511) / 512,
        BlockSize = 4096,
        ATime = m.ATime,
        MTime = m.MTime,
        CTime = m.CTime,
    };

    private MountedImage? Find(ulong ino) => ino >= 2 && ino - 2 < (ulong)_images.Length ? _images[ino - 2] : null;

    /// <summary>Runs a request that only succeeds or fails, counting it in <paramref name="counters"/>.</summary>
    private static int Counted(MountedImage m, OperationCounters counters, long bytes, Action action)
    {
        long started = IoStatistics.Timestamp();
        try
        {
            action();
            counters.Done(bytes, started);
            return 0;
        }
        catch (Exception e)
        {
            counters.Fail();
            return Fail(m, e);
        }
    }

    /// <summary>Reloads a changed image's metadata before an open; true when the kernel's cached pages must go.</summary>
    private bool Revalidate(MountedImage m)
    {
        if (m.Revalidator is not { } revalidator)
        {
            return false;
        }

        try
        {
            if (!revalidator.RevalidateIfChanged())
            {
                return false;
            }
        }
        catch (Exception e)
        {
            // Caught mid-update, say: keep serving what we had; the next open tries again.
            Log.Warn($"{m.Image.Path}: changed, but reloading its metadata failed: {e.Message} (serving the previous state)");
            return true;
        }

        Session?.InvalidateCache(m.Ino, -1, 0); // the size may have changed; pages go with keep_cache off
        Log.Info($"{m.Image.Path}: changed on disk; metadata reloaded");
        return true;
    }

    private static int Fail(MountedImage m, Exception e)
    {
        if (e is CorruptImageException corrupt)
        {
            m.ReportCorruption(corrupt);
        }
        else if (e is not (IOException { HResult: Errno.ENOSPC or Errno.EROFS or Errno.EFBIG } or ImageFailedException))
        {
            Log.Error($"{m.Image.Path}: {e.Message}");
        }

        return -Errno.FromException(e);
    }
}
