using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.Live;

/// <summary>An image QEMU writes while we have it mounted -o ro,force_share: refresh and re-open show the new state.</summary>
public sealed class RefreshTests
{
    private static byte ByteAt(int fd, long offset)
    {
        var b = new byte[4096];
        Assert.Equal(4096, LibC.PReadErr(fd, b, offset));
        return b[17];
    }

    [Fact]
    public void Refresh_and_reopen_show_what_qemu_io_wrote_under_a_force_share_mount()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        Qemu.Io(t["a.qed"], "write -P 0x11 0 64k");
        using var m = Mounted.Start(t.Dir("mnt"), [t["a.qed"]], ["-o", "ro,force_share"]);

        // One descriptor, through the page cache, held across the changes: only refresh can help it.
        int fd = LibC.OpenOrThrow(m.File(), LibC.O_RDONLY);
        try
        {
            Assert.Equal(0x11, ByteAt(fd, 0));
            Assert.Equal(0, ByteAt(fd, 1 << 20));

            // In place (data only), and a new cluster in the L2 table we have cached.
            Qemu.Io(t["a.qed"], "write -P 0x22 0 64k", "write -P 0x33 1M 64k");
            RunResult r = Env.Qf("refresh", m.MountPoint);
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("a.raw: reloaded", r.Stdout);
            Assert.Equal(0x22, ByteAt(fd, 0));
            Assert.Equal(0x33, ByteAt(fd, 1 << 20));

            // The size is header metadata too.
            Qemu.Img("resize", "-f", "qed", t["a.qed"], "128M");
            Qemu.Io(t["a.qed"], "write -P 0x44 100M 64k");
            Assert.Equal(0, Env.Qf("refresh", m.MountPoint).ExitCode);
            Assert.Equal(128L << 20, new FileInfo(m.File()).Length);
            Assert.Equal(0x44, ByteAt(fd, 100L << 20));
        }
        finally
        {
            LibC.Close(fd);
        }

        // No refresh: a new open notices the change by itself (close-to-open).
        Qemu.Io(t["a.qed"], "write -P 0x55 0 64k", "write -P 0x66 3M 64k");
        byte[] head = ImageFile.ReadRange(m.File(), 0, 4096);
        Assert.Equal(0x55, head[17]);
        Assert.Equal(0x66, ImageFile.ReadRange(m.File(), 3 << 20, 4096)[17]);
        RunResult unmount = m.Unmount();
        Assert.True(unmount.ExitCode == 0, unmount.ToString());
    }

    [Fact]
    public void A_read_write_mount_refuses_refresh()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        using var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]);
        RunResult r = Env.Qf("refresh", m.MountPoint);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(Text.Lines(r.Stderr));
        Assert.Contains("read-write", r.Stderr);
        Assert.Equal(0, m.Unmount().ExitCode);
    }
}
