using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Tests.Support;

/// <summary>The few libc calls the tests need to reach the kernel directly.</summary>
internal static class Posix
{
    public const int O_RDONLY = 0, O_DIRECT = 0x4000, SEEK_DATA = 3, SEEK_HOLE = 4;

    private const int O_CLOEXEC = 0x80000;

    /// <summary>open(2), always close-on-exec, so a server another test starts never inherits a descriptor of this test's mount.</summary>
    public static int open(string path, int flags) => open_native(path, flags | O_CLOEXEC);

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int open_native([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

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
