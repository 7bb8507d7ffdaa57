using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

public sealed class CorruptionTests
{
    [Fact]
    public void L2EntryPastEofGivesEioOnlyThereAndTheMountStaysUp()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        const int cluster = 65536;
        Qemu.CreateQed(img, "64M", cluster, 4);
        Qemu.Io(img, "write -P 0xa 1M 64k", "write -P 0xb 10M 64k", "write -P 0xc 30M 64k");
        Assert.False(ImageFile.NeedCheck(img));

        long l1 = (long)ImageFile.ReadU64(img, 40);
        long l2 = (long)ImageFile.ReadU64(img, l1);
        Assert.True(l2 > 0 && l2 % cluster == 0, $"L1[0] = {l2}");
        long entry = l2 + ((1 << 20) / cluster) * 8;
        Assert.NotEqual(0UL, ImageFile.ReadU64(img, entry));
        long eof = new FileInfo(img).Length;
        long pastEof = (eof + cluster - 1) / cluster * cluster + 100L * cluster;
        ImageFile.WriteU64(img, entry, (ulong)pastEof);
        Assert.False(ImageFile.NeedCheck(img)); // so no repair runs at open

        using var m = Mounted.Start(t.Dir("mnt"), [img], ["-o", "ro"]);
        int fd = LibC.OpenOrThrow(m.File(), LibC.O_RDONLY | LibC.O_DIRECT);
        try
        {
            byte[] buf = new byte[4096];
            Assert.Equal(-LibC.EIO, LibC.PReadErr(fd, buf, 1 << 20));
            Assert.Equal(-LibC.EIO, LibC.PReadErr(fd, buf, (1 << 20) + 8192));
            Assert.Equal(4096, LibC.PReadErr(fd, buf, 10 << 20));
            Assert.All(buf, b => Assert.Equal(0xb, b));
        }
        finally
        {
            LibC.Close(fd);
        }

        // Through the page cache too, and other regions stay readable.
        RunResult dd = Run.Exec("dd", $"if={m.File()}", "of=/dev/null", "bs=64k", "skip=16", "count=1", "status=none");
        Assert.NotEqual(0, dd.ExitCode);
        Assert.Contains("Input/output error", dd.Stderr);
        Assert.Equal(0xc, ImageFile.ReadRange(m.File(), 30 << 20, 1)[0]);
        Assert.Equal(0, ImageFile.ReadRange(m.File(), 50 << 20, 1)[0]);
        Assert.True(Mounts.IsQedfuseMount(m.MountPoint));
        Assert.True(Mounts.IsAlive(m.Pid));
        Assert.Equal(0, m.Unmount().ExitCode);
    }
}
