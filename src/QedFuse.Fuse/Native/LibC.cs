using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>The few libc calls the session needs (unmount as root, a daemon's own session).</summary>
internal static unsafe partial class LibC
{
    [LibraryImport("libc", SetLastError = true)]
    public static partial int umount2(byte* target, int flags);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsid();
}
