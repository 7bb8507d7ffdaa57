using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Tests.Support;

/// <summary>The few libc calls the tests need to reach the kernel directly.</summary>
internal static class Posix
{
    public const int O_RDONLY = 0, O_DIRECT = 0x4000, SEEK_DATA = 3, SEEK_HOLE = 4;

    [DllImport("libc", SetLastError = true)]
    public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    public static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    public static extern long lseek(int fd, long offset, int whence);

    [DllImport("libc", SetLastError = true)]
    public static extern nint pread(int fd, byte[] buffer, nint count, long offset);

    /// <summary>lseek result, or -errno on failure.</summary>
    public static long Lseek(int fd, long offset, int whence)
    {
        long r = lseek(fd, offset, whence);
        return r >= 0 ? r : -Marshal.GetLastPInvokeError();
    }
}
