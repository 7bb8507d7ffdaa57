using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.ImageTools;

/// <summary>commit: the base gets what the overlay shows, the overlay is emptied unless -d, -b goes deeper; refusals, interruption.</summary>
public sealed class CommitTests
{
    /// <summary>base.raw (1M) under mid.qed (2M) under top.qed (3M), each layer with its own writes, zero clusters included.</summary>
    private static void MakeChain(TempDir t)
    {
        Tool.RawFull(t["base.raw"], 1, 0x01);
        Qemu.CreateQed(t["mid.qed"], "2M", backing: "base.raw", backingFormat: "raw");
        Tool.Fill(t["mid.qed"], "qed", "write -P 0x02 64k 64k", "write -z 256k 64k", "write -P 0x03 1536k 64k");
        Qemu.CreateQed(t["top.qed"], "3M", backing: "mid.qed", backingFormat: "qed");
        Tool.Fill(t["top.qed"], "qed", "write -P 0x04 128k 4k", "write -z 512k 64k", "write -P 0x05 2500k 4k");
        Qemu.ToRaw(t["top.qed"], t["view.raw"]);
    }

    [Fact]
    public void Commit_fills_the_backing_file_and_empties_the_overlay()
    {
        using var t = new TempDir();
        MakeChain(t);
        string baseHash = ImageFile.Hash(t["base.raw"]);

        RunResult r = Env.Qf("commit", t["top.qed"]).Ok();
        Assert.Equal("Image committed.\n", r.Stdout);
        Tool.AssertClean(t["top.qed"]);
        Tool.AssertClean(t["mid.qed"]);
        Tool.AssertSameContent(t["view.raw"], t["mid.qed"]);
        Tool.AssertSameContent(t["view.raw"], t["top.qed"]);
        Assert.Contains("virtual size: 3 MiB", Tool.Info(t["mid.qed"]));
        Assert.Equal(baseHash, ImageFile.Hash(t["base.raw"]));
        // Emptied: nothing of the view comes from top.qed itself any more.
        Assert.DoesNotContain("\"depth\": 0", Qemu.Img("map", "--output=json", t["top.qed"]).Stdout);
    }

    [Fact]
    public void Drop_keeps_the_overlay_and_base_option_commits_further_down()
    {
        using var t = new TempDir();
        MakeChain(t);
        string topHash = ImageFile.Hash(t["top.qed"]);
        Env.Qf("commit", "-d", t["top.qed"]).Ok();
        Assert.Equal(topHash, ImageFile.Hash(t["top.qed"]));
        Tool.AssertSameContent(t["view.raw"], t["mid.qed"]);

        Env.Qf("commit", "-p", "-b", t["base.raw"], t["top.qed"]).Ok();
        Assert.Equal(topHash, ImageFile.Hash(t["top.qed"]));
        Assert.Equal(3L << 20, new FileInfo(t["base.raw"]).Length);
        Tool.AssertSameContent(t["view.raw"], t["base.raw"]);

        Tool.AssertRefused(Env.Qf("commit", "-b", t["view.raw"], t["top.qed"]), "not in the backing chain");
        Tool.AssertRefused(Env.Qf("commit", t["base.raw"]), "no backing file");
    }

    [Fact]
    public void An_overlay_in_use_is_refused_and_nothing_changes()
    {
        using var t = new TempDir();
        MakeChain(t);
        using var m = Mounted.Start(t.Dir("mnt"), t["top.qed"]);
        string top = ImageFile.Hash(t["top.qed"]), mid = ImageFile.Hash(t["mid.qed"]);
        Tool.AssertRefused(Env.Qf("commit", t["top.qed"]), "in use");
        // The mount holds the backing files open for reading, refusing writers: the base is refused too.
        Tool.AssertRefused(Env.Qf("commit", "-d", t["top.qed"]), "in use");
        Assert.Equal(top, ImageFile.Hash(t["top.qed"]));
        Assert.Equal(mid, ImageFile.Hash(t["mid.qed"]));
    }

    [Fact]
    public void Interrupted_commit_leaves_the_overlay_showing_the_same()
    {
        using var t = new TempDir();
        Tool.RawFull(t["base.raw"], 8, 0x01);
        Qemu.CreateQed(t["top.qed"], "8M", backing: "base.raw", backingFormat: "raw");
        Tool.Fill(t["top.qed"], "qed", "write -P 0x09 0 8M");
        string topHash = ImageFile.Hash(t["top.qed"]);

        using var p = new Background(Env.Qedfuse, "commit", "-p", "-r", "1M", t["top.qed"]);
        RunResult r = Tool.InterruptMidway(p);
        Assert.True(r.ExitCode == 130, $"expected exit 130 after SIGINT: {r}");
        Assert.Equal(topHash, ImageFile.Hash(t["top.qed"]));
        Tool.AssertClean(t["top.qed"]);
        Qemu.Io(t["top.qed"], "read -P 0x09 0 8M");
        // Part of the base was written, part not: a prefix of the overlay's data.
        Qemu.IoFormat(t["base.raw"], "raw", "read -P 0x09 0 1M", "read -P 0x01 7M 1M");
    }
}
