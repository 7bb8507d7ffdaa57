using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.ImageTools;

/// <summary>resize: grow raw and QED (the new space usable through a mount), shrink raw, refuse the rest unchanged.</summary>
public sealed class ResizeTests
{
    [Fact]
    public void Grown_qed_is_usable_past_the_old_end_through_a_mount()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "1M");
        Tool.Fill(t["a.qed"], "qed", "write -P 0x21 0 1M");

        RunResult r = Env.Qf("resize", t["a.qed"], "+3M").Ok();
        Assert.Equal("Image resized.\n", r.Stdout);
        Assert.Contains("virtual size: 4 MiB (4194304 bytes)", Tool.Info(t["a.qed"]));
        Tool.AssertClean(t["a.qed"]);

        using (var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]))
        {
            Assert.Equal(4L << 20, new FileInfo(m.File()).Length);
            Assert.All(ImageFile.ReadRange(m.File(), 1L << 20, 65536), b => Assert.Equal(0, b));
            byte[] data = ImageFile.Bytes(8192, 5);
            using (var f = new FileStream(m.File(), FileMode.Open, FileAccess.Write))
            {
                f.Position = (3L << 20) + 100;
                f.Write(data);
                f.Flush(true);
            }

            Assert.Equal(data, ImageFile.ReadRange(m.File(), (3L << 20) + 100, data.Length));
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Tool.AssertClean(t["a.qed"]);
        Qemu.Io(t["a.qed"], "read -P 0x21 0 1M", "read -P 0 1M 2M");
        Assert.Equal(ImageFile.Bytes(8192, 5), ImageFile.ReadRange(ToRaw(t, "a.qed"), (3L << 20) + 100, 8192));
    }

    [Fact]
    public void Raw_grows_and_shrinks_only_with_shrink()
    {
        using var t = new TempDir();
        Tool.RawFull(t["d.raw"], 2, 0x31);
        Env.Qf("resize", "-f", "raw", t["d.raw"], "3M").Ok();
        Assert.Equal(3L << 20, new FileInfo(t["d.raw"]).Length);
        Qemu.IoFormat(t["d.raw"], "raw", "read -P 0x31 0 2M", "read -P 0 2M 1M");

        string hash = ImageFile.Hash(t["d.raw"]);
        Tool.AssertRefused(Env.Qf("resize", t["d.raw"], "--", "-1M"), "--shrink");
        Assert.Equal(hash, ImageFile.Hash(t["d.raw"]));

        Env.Qf("resize", "--shrink", t["d.raw"], "--", "-1536K").Ok();
        Assert.Equal(1536L << 10, new FileInfo(t["d.raw"]).Length);
        Qemu.IoFormat(t["d.raw"], "raw", "read -P 0x31 0 1536k");
    }

    [Fact]
    public void Qed_refusals_change_nothing()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "4M", clusterSize: 4096, tableSize: 2);
        string hash = ImageFile.Hash(t["a.qed"]);
        // 4 KiB clusters, two-cluster tables: 1024 x 1024 x 4 KiB = 4 GiB at most.
        RunResult r = Env.Qf("resize", t["a.qed"], "5G");
        Tool.AssertRefused(r, "at most 4 GiB");
        Tool.AssertRefused(Env.Qf("resize", "--shrink", t["a.qed"], "1M"), "cannot shrink");
        Tool.AssertRefused(Env.Qf("resize", t["a.qed"], "+1000"), "multiple of 512");
        Tool.AssertRefused(Env.Qf("resize", t["a.qed"], "lots"), "invalid size");
        Assert.Equal(hash, ImageFile.Hash(t["a.qed"]));

        Env.Qf("resize", t["a.qed"], "4G").Ok();
        Assert.Contains("virtual size: 4 GiB", Tool.Info(t["a.qed"]));
        Tool.AssertClean(t["a.qed"]);
    }

    [Fact]
    public void An_image_mounted_read_write_is_refused_unchanged()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "4M");
        using var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]);
        string hash = ImageFile.Hash(t["a.qed"]);
        Tool.AssertRefused(Env.Qf("resize", t["a.qed"], "+1M"), "in use");
        Assert.Equal(hash, ImageFile.Hash(t["a.qed"]));
        Assert.Equal(4L << 20, new FileInfo(m.File()).Length);
    }

    private static string ToRaw(TempDir t, string image)
    {
        string raw = t[image + ".raw"];
        Qemu.ToRaw(t[image], raw);
        return raw;
    }
}
