using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QedFuse.Block.Native;

/// <summary>
/// The few libc calls .NET does not expose: durability without a metadata sync (fdatasync),
/// host space control (fallocate), sparse-file queries (SEEK_DATA/SEEK_HOLE), QEMU's OFD locks
/// and st_blocks. Each returns 0 or a positive errno instead of throwing, so callers decide.
/// Every struct layout and constant here is pinned against gcc and the glibc headers by
/// <see cref="LayoutFacts"/> (tested in QedFuse.Block.Tests).
/// </summary>
internal static partial class LibC
{
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EAGAIN = 11;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int EROFS = 30;

    public const short LockRead = 0;   // F_RDLCK
    public const short LockWrite = 1;  // F_WRLCK
    public const short LockNone = 2;   // F_UNLCK

    private const int FOfdGetLk = 36;
    private const int FOfdSetLk = 37;

    /// <summary>struct flock (x86_64 and aarch64): l_pid must be 0 for OFD locks.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Len;
        public int Pid;
    }

    /// <summary>The part of struct stat we read (x86_64 layout), at its C offsets.</summary>
    [StructLayout(LayoutKind.Explicit, Size = StatSize)]
    internal struct Stat
    {
        public const int StatSize = 144;

        [FieldOffset(48)]
        public long Size;

        [FieldOffset(64)]
        public long Blocks;
    }

    public static int Fdatasync(SafeFileHandle fd) => Retry(() => fdatasync(fd));

    public static int Fallocate(SafeFileHandle fd, int mode, long offset, long length) =>
        Retry(() => fallocate(fd, mode, offset, length));

    /// <summary>lseek with SEEK_DATA/SEEK_HOLE; returns the offset, or -errno.</summary>
    public static long Seek(SafeFileHandle fd, long offset, int whence)
    {
        long r = lseek(fd, offset, whence);
        return r >= 0 ? r : -Marshal.GetLastPInvokeError();
    }

    /// <summary>Takes (or with <see cref="LockNone"/> drops) an OFD lock on one byte; returns 0 or errno.</summary>
    public static int SetOfdLock(SafeFileHandle fd, long offset, short type)
    {
        var lk = new Flock { Type = type, Whence = 0, Start = offset, Len = 1 };
        return fcntl(fd, FOfdSetLk, ref lk) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Whether another open file description holds a lock conflicting with <paramref name="type"/> on the byte.</summary>
    public static bool OfdLockConflicts(SafeFileHandle fd, long offset, short type, out int errno)
    {
        var lk = new Flock { Type = type, Whence = 0, Start = offset, Len = 1 };
        if (fcntl(fd, FOfdGetLk, ref lk) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return false;
        }

        errno = 0;
        return lk.Type != LockNone;
    }

    /// <summary>Host bytes the file occupies (st_blocks * 512), or -1.</summary>
    public static long AllocatedBytes(SafeFileHandle fd) => fstat(fd, out Stat st) == 0 ? st.Blocks * 512 : -1;

    /// <summary>Every layout and constant above as (C expression, managed value), for the gcc layout test.</summary>
    internal static IReadOnlyList<(string C, long Managed)> LayoutFacts() =>
    [
        ("sizeof(struct flock)", Marshal.SizeOf<Flock>()),
        ("offsetof(struct flock, l_type)", Marshal.OffsetOf<Flock>(nameof(Flock.Type))),
        ("offsetof(struct flock, l_whence)", Marshal.OffsetOf<Flock>(nameof(Flock.Whence))),
        ("offsetof(struct flock, l_start)", Marshal.OffsetOf<Flock>(nameof(Flock.Start))),
        ("offsetof(struct flock, l_len)", Marshal.OffsetOf<Flock>(nameof(Flock.Len))),
        ("offsetof(struct flock, l_pid)", Marshal.OffsetOf<Flock>(nameof(Flock.Pid))),
        ("sizeof(((struct flock *)0)->l_type)", sizeof(short)),
        ("sizeof(((struct flock *)0)->l_start)", sizeof(long)),
        ("sizeof(((struct flock *)0)->l_pid)", sizeof(int)),
        ("sizeof(struct stat)", Marshal.SizeOf<Stat>()),
        ("offsetof(struct stat, st_size)", Marshal.OffsetOf<Stat>(nameof(Stat.Size))),
        ("offsetof(struct stat, st_blocks)", Marshal.OffsetOf<Stat>(nameof(Stat.Blocks))),
        ("sizeof(((struct stat *)0)->st_blocks)", sizeof(long)),
        ("sizeof(off_t)", sizeof(long)),
        ("F_RDLCK", LockRead),
        ("F_WRLCK", LockWrite),
        ("F_UNLCK", LockNone),
        ("F_OFD_GETLK", FOfdGetLk),
        ("F_OFD_SETLK", FOfdSetLk),
        ("EINTR", EINTR),
        ("EIO", EIO),
        ("EAGAIN", EAGAIN),
        ("EINVAL", EINVAL),
        ("EROFS", EROFS),
        ("SEEK_DATA", Linux.SeekData),
        ("SEEK_HOLE", Linux.SeekHole),
        ("FALLOC_FL_KEEP_SIZE", Linux.FallocKeepSize),
        ("FALLOC_FL_PUNCH_HOLE", Linux.FallocPunchHole),
        ("FALLOC_FL_ZERO_RANGE", Linux.FallocZeroRange),
    ];

    private static int Retry(Func<int> call)
    {
        while (true)
        {
            if (call() == 0)
            {
                return 0;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                return errno;
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(SafeFileHandle fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(SafeFileHandle fd, int mode, long offset, long len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long lseek(SafeFileHandle fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(SafeFileHandle fd, int cmd, ref Flock lk);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstat(SafeFileHandle fd, out Stat statbuf);
}
