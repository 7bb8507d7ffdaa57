using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.ImageTools;

/// <summary>convert against qemu-img: same bytes, sparse output, thin copies, -n, refusals, interruption.</summary>
public sealed class ConvertTests
{
    /// <summary>A raw base and a QED overlay with data, a zero cluster over base data, data of zeros, and a partial cluster.</summary>
    private static string MakeChain(TempDir t)
    {
        Qemu.Img("create", "-q", "-f", "raw", t["base.raw"], "6M");
        Tool.Fill(t["base.raw"], "raw", "write -P 0x11 0 3M", "write -P 0x12 5M 64k");
        Qemu.CreateQed(t["src.qed"], "8M", backing: "base.raw", backingFormat: "raw");
        Tool.Fill(t["src.qed"], "qed", "write -P 0xa1 64k 128k", "write -z 1M 128k", "write -P 0 2M 64k", "write -P 0xa2 7M 1000",
            "write -P 0xa3 7340031 1");
        return t["src.qed"];
    }

    [Fact]
    public void Round_trip_qed_raw_qed_raw_is_byte_identical_and_sparse()
    {
        using var t = new TempDir();
        string src = MakeChain(t);
        Qemu.ToRaw(src, t["ref.raw"]);

        Env.Qf("convert", src, t["a.raw"]).Ok();
        Assert.Equal(ImageFile.Hash(t["ref.raw"]), ImageFile.Hash(t["a.raw"]));
        // Sparse: data exactly where qemu-img's own conversion has data.
        Assert.Equal(Qemu.DataRanges(t["ref.raw"]), Qemu.DataRanges(t["a.raw"]));

        Env.Qf("convert", "-O", "qed", "-o", "cluster_size=16k", "-m", "1", t["a.raw"], t["b.qed"]).Ok();
        Tool.AssertClean(t["b.qed"]);
        Assert.Contains("cluster_size: 16384", Tool.Info(t["b.qed"]));
        Tool.AssertSameContent(t["ref.raw"], t["b.qed"]);
        // Zero runs (the 64k of written zeros, the zero cluster) are not allocated in the copy.
        var data = Qemu.DataRanges(t["b.qed"]);
        Assert.DoesNotContain(data, r => Tool.Overlaps(r, 1L << 20, 128 << 10) || Tool.Overlaps(r, 2L << 20, 64 << 10));

        Env.Qf("convert", "-W", "-m", "16", "-f", "qed", "-O", "raw", t["b.qed"], t["c.raw"]).Ok();
        Assert.Equal(ImageFile.Hash(t["ref.raw"]), ImageFile.Hash(t["c.raw"]));

        // -S 0: fully allocated, same bytes.
        Env.Qf("convert", "-S", "0", t["b.qed"], t["full.raw"]).Ok();
        Assert.Equal(ImageFile.Hash(t["ref.raw"]), ImageFile.Hash(t["full.raw"]));
        Assert.True(Blocks(t["full.raw"]) * 512 >= new FileInfo(t["full.raw"]).Length, "-S 0 left holes");
    }

    [Fact]
    public void Backing_option_writes_only_what_differs_from_the_new_base()
    {
        using var t = new TempDir();
        Tool.RawFull(t["base.raw"], 4, 0x33);
        File.Copy(t["base.raw"], t["modified.raw"]);
        Tool.Fill(t["modified.raw"], "raw", "write -P 0x44 1M 4k", "write -z 3M 64k");

        Env.Qf("convert", "-O", "qed", "-B", "base.raw", "-F", "raw", t["modified.raw"], t["thin.qed"]).Ok();
        Tool.AssertClean(t["thin.qed"]);
        Assert.Contains("backing file: base.raw", Tool.Info(t["thin.qed"]));
        Tool.AssertSameContent(t["modified.raw"], t["thin.qed"]);
        // Only the changed cluster holds data in the thin image itself; the rest reads from the base.
        var own = Tool.OwnData(t["thin.qed"]);
        Assert.Equal([(1L << 20, 65536L)], own);
    }

    [Fact]
    public void No_create_writes_into_an_existing_image_zeros_included()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["target.qed"], "4M");
        Tool.Fill(t["target.qed"], "qed", "write -P 0xee 0 4M");
        Qemu.Img("create", "-q", "-f", "raw", t["src.raw"], "3M");
        Tool.Fill(t["src.raw"], "raw", "write -P 0x55 512k 100k");

        Env.Qf("convert", "-n", t["src.raw"], t["target.qed"]).Ok();
        Tool.AssertClean(t["target.qed"]);
        Assert.Contains("virtual size: 4 MiB", Tool.Info(t["target.qed"]));
        // The first 3 MiB now show the source (zeros overwritten), the last MiB is untouched.
        Qemu.Io(t["target.qed"], "read -P 0 0 512k", "read -P 0x55 512k 100k", "read -P 0 612k 2460k", "read -P 0xee 3M 1M");

        // A target smaller than the source is refused, unchanged.
        Qemu.CreateQed(t["small.qed"], "1M");
        string hash = ImageFile.Hash(t["small.qed"]);
        Tool.AssertRefused(Env.Qf("convert", "-n", t["src.raw"], t["small.qed"]), "smaller");
        Assert.Equal(hash, ImageFile.Hash(t["small.qed"]));
    }

    [Fact]
    public void A_target_in_use_is_refused_and_left_unchanged()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["busy.qed"], "4M");
        Tool.Fill(t["busy.qed"], "qed", "write -P 0x66 0 64k");
        Qemu.Img("create", "-q", "-f", "raw", t["src.raw"], "1M");
        using (var m = Mounted.Start(t.Dir("mnt"), t["busy.qed"]))
        {
            string hash = ImageFile.Hash(t["busy.qed"]);
            Tool.AssertRefused(Env.Qf("convert", "-O", "qed", t["src.raw"], t["busy.qed"]), "in use");
            Tool.AssertRefused(Env.Qf("convert", "-n", t["src.raw"], t["busy.qed"]), "in use");
            Assert.Equal(hash, ImageFile.Hash(t["busy.qed"]));
            // Reading a source that is mounted read-write needs -U, as with qemu-img.
            Tool.AssertRefused(Env.Qf("convert", t["busy.qed"], t["copy.raw"]), "in use");
            Env.Qf("convert", "-U", t["busy.qed"], t["copy.raw"]).Ok();
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Assert.Equal(Directory.GetFiles(t.Path).Order(), new[] { t["busy.qed"], t["copy.raw"], t["src.raw"] }.Order());
    }

    [Fact]
    public void Interrupted_convert_leaves_no_target_and_an_existing_one_untouched()
    {
        using var t = new TempDir();
        Tool.RawFull(t["src.raw"], 8, 0x77);
        File.WriteAllText(t["old.qed"], "the previous file of this name\n");
        string hash = ImageFile.Hash(t["src.raw"]);
        using var p = new Background(Env.Qedfuse, "convert", "-p", "-r", "1M", "-O", "qed", t["src.raw"], t["old.qed"]);
        RunResult r = Tool.InterruptMidway(p);
        Assert.True(r.ExitCode == 130, $"expected exit 130 after SIGINT: {r}");
        Assert.Single(Text.Lines(r.Stderr));
        Assert.Equal("the previous file of this name\n", File.ReadAllText(t["old.qed"]));
        Assert.Equal(hash, ImageFile.Hash(t["src.raw"]));
        Assert.Equal(new[] { t["old.qed"], t["src.raw"] }.Order(), Directory.GetFiles(t.Path).Order());
    }

    [Fact]
    public void Qcow2_only_features_say_so_in_one_line()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "1M");
        Tool.AssertRefused(Env.Qf("convert", "-c", "-O", "qed", t["a.qed"], t["b.qed"]), "qcow2");
        Tool.AssertRefused(Env.Qf("convert", "-l", "snap1", t["a.qed"], t["b.raw"]), "qcow2");
        Tool.AssertRefused(Env.Qf("snapshot", "-l", t["a.qed"]), "qcow2");
        Assert.False(File.Exists(t["b.qed"]) || File.Exists(t["b.raw"]));
    }

    private static long Blocks(string path) =>
        long.Parse(Run.Exec("stat", "-c", "%b", path).Ok().Stdout.Trim());
}
