using QedFuse.Fuse.Tests.Support;

namespace QedFuse.Fuse.Tests;

/// <summary>
/// Entry point of the test assembly (replaces the test SDK's generated one). Run as
/// <c>dotnet exec QedFuse.Fuse.Tests.dll serve MOUNTPOINT</c> it serves a
/// <see cref="MemoryFileSystem"/> in a separate process, so a test can SIGKILL it.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is not ["serve", string mountPoint]) return 0;
        using var session = FuseSession.Mount(new MemoryFileSystem(), mountPoint,
            new FuseMountOptions { FsName = "memtest-child", Subtype = "memtest", AutoUnmount = true });
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        session.Run();
        return 0;
    }
}
