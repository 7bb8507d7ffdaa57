using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QedFuse.Block.Native;

/// <summary>
/// The few libc calls .NET does not expose: durability without a metadata sync (fdatasync),
/// host space control (fallocate), sparse-file queries (SEEK_DATA/SEEK_HOLE), QEMU's OFD locks
/// and st_blocks. Each returns 0 or a positive errno instead of throwing, so callers decide.
/// </summary>
internal static class LibC
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EINVAL = 22;
    public const int EROFS = 30;

    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;
    public const int FallocZeroRange = 0x10;

    public const int SeekData = 3;
    public const int SeekHole = 4;

    public const short LockRead = 0;   // F_RDLCK
    public const short LockWrite = 1;  // F_WRLCK
    public const short LockNone = 2;   // F_UNLCK

    private const int FOfdGetLk = 36;
    private const int FOfdSetLk = 37;

    /// <summary>struct flock on x86_64 (32 bytes): l_pid must be 0 for OFD locks.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Len;
        public int Pid;
        private readonly int _pad;
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
    public static long AllocatedBytes(SafeFileHandle fd)
    {
        // struct stat on x86_64 is 144 bytes with st_blocks at offset 64.
        var st = new long[18];
        return fstat(fd, st) == 0 ? st[8] * 512 : -1;
    }

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

    [DllImport("libc", SetLastError = true)]
    private static extern int fdatasync(SafeFileHandle fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int fallocate(SafeFileHandle fd, int mode, long offset, long len);

    [DllImport("libc", SetLastError = true)]
    private static extern long lseek(SafeFileHandle fd, long offset, int whence);

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(SafeFileHandle fd, int cmd, ref Flock lk);

    [DllImport("libc", SetLastError = true)]
    private static extern int fstat(SafeFileHandle fd, long[] statbuf);
}
