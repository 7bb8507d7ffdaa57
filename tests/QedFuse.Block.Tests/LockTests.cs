using System.Reflection;
using System.Runtime.InteropServices;

namespace QedFuse.Block.Tests;

/// <summary>QEMU-compatible image locks: taken on open, refused on conflict, released on close.</summary>
public class LockTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern int dup(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    [Fact]
    public void SecondWriterIsRefusedAndQemuSeesTheLock()
    {
        using var dir = new TempDir();
        string img = dir.File("l.qed");
        Engine.CreateQed(img, 1 << 20);
        using (IBlockImage image = Engine.OpenRw(img))
        {
            var e = Assert.Throws<ImageInUseException>(() => Engine.OpenRw(img).Dispose());
            Assert.Contains(img, e.Message);
            Assert.Throws<ImageInUseException>(() => Engine.OpenRo(img).Dispose());
            Engine.OpenRo(img, forceShare: true).Dispose();
            Assert.NotEqual(0, Qemu.Run("qemu-io", ["-f", "qed", "-c", "read 0 512", img]).ExitCode); // QEMU honours our lock
        }

        Qemu.Io(img, "qed", "write 0 512"); // released on close
    }

    /// <summary>
    /// A child forked by another thread (any Process.Start) shares the image's open file
    /// description until it execs, and OFD locks live as long as the description. Closing must
    /// therefore unlock explicitly, or an immediate reopen fails with "in use". A dup'd
    /// descriptor stands in for the forked child here.
    /// </summary>
    [Fact]
    public void CloseReleasesLocksWhileTheDescriptionIsStillShared()
    {
        using var dir = new TempDir();
        string img = dir.File("l.qed");
        Engine.CreateQed(img, 1 << 20);
        IBlockImage image = Engine.OpenRw(img);
        var file = (HostFile)image.GetType().GetField("_file", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(image)!;
        int shared = dup((int)file.Handle.DangerousGetHandle());
        Assert.True(shared >= 0);
        try
        {
            image.Dispose();
            using IBlockImage again = Engine.OpenRw(img);
        }
        finally
        {
            close(shared);
        }
    }
}
