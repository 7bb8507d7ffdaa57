using System.Collections.Concurrent;
using System.Text;

namespace QedFuse.Fuse.Tests.Support;

/// <summary>
/// A tiny in-memory file system for the mount tests. Its byte arrays are the oracle the
/// tests compare against: whatever arrives through the kernel must land here.
///
///   /data.bin   DataSize bytes, 64 KiB chunks; allocated chunks hold random bytes,
///               the others are holes (zeros) reported through SEEK_DATA/SEEK_HOLE
///   /small.txt  a short text file
///   /poison     reads fail in a different way per 4 KiB block (exception mapping)
///   /many/      ManyCount empty files with long names (readdir across several buffers)
/// </summary>
public sealed class MemoryFileSystem : IFuseFileSystem
{
    public const ulong RootIno = 1, DataIno = 2, SmallIno = 3, PoisonIno = 4, ManyIno = 5, ManyFirstIno = 1000;
    public const int Chunk = 64 * 1024;
    public const int DataSize = 32 * Chunk + 4567;
    public const int ManyCount = 300;
    public const int PoisonSize = 4 * 4096;
    /// <summary>Chunks of data.bin that start out allocated; all others are holes.</summary>
    public static readonly int[] InitiallyAllocated = [0, 1, 5, 32];
    public static readonly FuseTimespec FixedTime = new(1_700_000_000, 0);

    private readonly object _lock = new();
    public readonly byte[] Data = new byte[DataSize];
    public readonly bool[] Allocated = new bool[(DataSize + Chunk - 1) / Chunk];
    public readonly byte[] Small = "hello, fuse\n"u8.ToArray();

    public int FsyncCount, FlushCount, ReleaseCount, OpenCount, DirectOpenCount, InitCount, DestroyCount;
    public int MaxReadRequest;
    public readonly ConcurrentQueue<(int Mode, long Offset, long Length)> Fallocates = new();
    private long _nextFh = 100;

    public MemoryFileSystem()
    {
        var rng = new Random(42);
        foreach (int c in InitiallyAllocated)
        {
            Allocated[c] = true;
            int start = c * Chunk;
            rng.NextBytes(Data.AsSpan(start, Math.Min(Chunk, DataSize - start)));
        }
    }

    public static string ManyName(int i) => $"entry-{i:D4}-" + new string((char)('a' + i % 26), 40);

    public byte[] SnapshotData()
    {
        lock (_lock) return (byte[])Data.Clone();
    }

    public void Init(FuseConnectionInfo connection) => Interlocked.Increment(ref InitCount);

    public void Destroy() => Interlocked.Increment(ref DestroyCount);

    public int Lookup(ulong parent, ReadOnlySpan<byte> name, out FuseAttr attr)
    {
        string s = Encoding.UTF8.GetString(name);
        ulong ino = 0;
        if (parent == RootIno)
        {
            ino = s switch { "data.bin" => DataIno, "small.txt" => SmallIno, "poison" => PoisonIno, "many" => ManyIno, _ => 0 };
        }
        else if (parent == ManyIno && s.StartsWith("entry-") && int.TryParse(s.AsSpan(6, 4), out int i) && i < ManyCount && s == ManyName(i))
        {
            ino = ManyFirstIno + (ulong)i;
        }
        if (ino == 0)
        {
            attr = default;
            return -Errno.ENOENT;
        }
        return GetAttr(ino, out attr);
    }

    public int GetAttr(ulong ino, out FuseAttr attr)
    {
        attr = new FuseAttr { Ino = ino, NLink = 1, ATime = FixedTime, MTime = FixedTime, CTime = FixedTime };
        switch (ino)
        {
            case RootIno or ManyIno:
                attr.Mode = FuseMode.Directory | 0x1ED; // 0755
                attr.NLink = 2;
                return 0;
            case DataIno:
                attr.Mode = FuseMode.Regular | 0x1A4; // 0644
                attr.Size = DataSize;
                lock (_lock) attr.Blocks = Allocated.Count(a => a) * (Chunk / 512);
                return 0;
            case SmallIno:
                attr.Mode = FuseMode.Regular | 0x1A4;
                attr.Size = Small.Length;
                return 0;
            case PoisonIno:
                attr.Mode = FuseMode.Regular | 0x1A4;
                attr.Size = PoisonSize;
                return 0;
            case >= ManyFirstIno and < ManyFirstIno + ManyCount:
                attr.Mode = FuseMode.Regular | 0x124; // 0444
                return 0;
            default:
                return -Errno.ENOENT;
        }
    }

    public int SetAttr(ulong ino, in FuseSetAttr request, out FuseAttr attr)
    {
        int rc = GetAttr(ino, out attr);
        if (rc < 0) return rc;
        // Fixed-size files, like disk images: truncate to the current size only; times ignored.
        if (request.Has(FuseSetAttrFields.Size) && request.Size != attr.Size) return -Errno.EPERM;
        if (request.Has(FuseSetAttrFields.Mode) || request.Has(FuseSetAttrFields.Uid) || request.Has(FuseSetAttrFields.Gid))
            return -Errno.EPERM;
        return 0;
    }

    public int ReadDir(ulong ino, ulong fh, long offset, ref FuseDirectoryBuffer entries)
    {
        var list = new List<(string Name, ulong Ino, uint Mode)> { (".", ino, FuseMode.Directory), ("..", RootIno, FuseMode.Directory) };
        if (ino == RootIno)
        {
            list.Add(("data.bin", DataIno, FuseMode.Regular));
            list.Add(("small.txt", SmallIno, FuseMode.Regular));
            list.Add(("poison", PoisonIno, FuseMode.Regular));
            list.Add(("many", ManyIno, FuseMode.Directory));
        }
        else if (ino == ManyIno)
        {
            for (int i = 0; i < ManyCount; i++) list.Add((ManyName(i), ManyFirstIno + (ulong)i, FuseMode.Regular));
        }
        else
        {
            return -Errno.ENOTDIR;
        }
        for (int i = (int)offset; i < list.Count; i++)
        {
            if (!entries.TryAdd(list[i].Name, list[i].Ino, list[i].Mode, i + 1)) break;
        }
        return 0;
    }

    public int Open(ulong ino, int flags, ref FuseOpenOptions options)
    {
        if (ino is RootIno or ManyIno) return -Errno.EISDIR;
        Interlocked.Increment(ref OpenCount);
        bool direct = FuseOpenOptions.IsODirect(flags);
        if (direct) Interlocked.Increment(ref DirectOpenCount);
        options.DirectIo = direct || ino == PoisonIno;
        options.KeepCache = !options.DirectIo;
        options.FileHandle = (ulong)Interlocked.Increment(ref _nextFh);
        return 0;
    }

    public int Read(ulong ino, ulong fh, long offset, Span<byte> buffer)
    {
        int seen;
        while ((seen = MaxReadRequest) < buffer.Length && Interlocked.CompareExchange(ref MaxReadRequest, buffer.Length, seen) != seen) { }
        switch (ino)
        {
            case DataIno:
                lock (_lock) return CopyOut(Data, offset, buffer);
            case SmallIno:
                return CopyOut(Small, offset, buffer);
            case PoisonIno:
                return (offset / 4096) switch
                {
                    0 => throw new IOException("no data here", Errno.ENOSPC),
                    1 => throw new ArgumentOutOfRangeException(nameof(offset)),
                    2 => throw new InvalidOperationException("a bug"),
                    _ => -Errno.EROFS,
                };
            default:
                return -Errno.EISDIR;
        }
    }

    private static int CopyOut(byte[] source, long offset, Span<byte> buffer)
    {
        if (offset >= source.Length) return 0;
        int n = (int)Math.Min(buffer.Length, source.Length - offset);
        source.AsSpan((int)offset, n).CopyTo(buffer);
        return n;
    }

    public int Write(ulong ino, ulong fh, long offset, ReadOnlySpan<byte> data)
    {
        if (ino != DataIno) return -Errno.EPERM;
        lock (_lock)
        {
            if (offset >= DataSize) return -Errno.ENOSPC;
            int n = (int)Math.Min(data.Length, DataSize - offset);
            data[..n].CopyTo(Data.AsSpan((int)offset));
            for (long c = offset / Chunk; c <= (offset + n - 1) / Chunk; c++) Allocated[c] = true;
            return n;
        }
    }

    public int Flush(ulong ino, ulong fh)
    {
        Interlocked.Increment(ref FlushCount);
        return 0;
    }

    public int Fsync(ulong ino, ulong fh, bool dataOnly)
    {
        Interlocked.Increment(ref FsyncCount);
        return 0;
    }

    public int Release(ulong ino, ulong fh)
    {
        Interlocked.Increment(ref ReleaseCount);
        return 0;
    }

    public int Fallocate(ulong ino, ulong fh, int mode, long offset, long length)
    {
        const int KeepSize = 1, PunchHole = 2, ZeroRange = 0x10;
        if (ino != DataIno) return -Errno.EOPNOTSUPP;
        Fallocates.Enqueue((mode, offset, length));
        if ((mode & ~(KeepSize | PunchHole | ZeroRange)) != 0) return -Errno.EOPNOTSUPP;
        if ((mode & (PunchHole | ZeroRange)) == 0) return 0;
        lock (_lock)
        {
            long end = Math.Min(DataSize, offset + length);
            if (offset >= end) return 0;
            Data.AsSpan((int)offset, (int)(end - offset)).Clear();
            // Only chunks entirely inside the range become holes.
            for (long c = (offset + Chunk - 1) / Chunk; c * Chunk < end && Math.Min((c + 1) * Chunk, DataSize) <= end; c++)
                Allocated[c] = false;
            return 0;
        }
    }

    public long Lseek(ulong ino, ulong fh, long offset, int whence)
    {
        const int SeekData = 3, SeekHole = 4;
        if (ino != DataIno) return -Errno.ENOSYS;
        if (offset < 0) return -Errno.EINVAL;
        if (offset >= DataSize) return -Errno.ENXIO;
        lock (_lock)
        {
            for (long c = offset / Chunk; c < Allocated.Length; c++)
            {
                if (whence == SeekData && Allocated[c]) return Math.Max(offset, c * Chunk);
                if (whence == SeekHole && !Allocated[c]) return Math.Max(offset, c * Chunk);
            }
        }
        return whence == SeekData ? -Errno.ENXIO : DataSize;
    }
}
