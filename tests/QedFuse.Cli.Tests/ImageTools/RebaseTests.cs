using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.ImageTools;

/// <summary>rebase: safe mode keeps the content (as qemu-img's does), -u only renames, "" detaches; refusals and interruption.</summary>
public sealed class RebaseTests
{
    /// <summary>old.raw and new.raw differ in their second MiB and in size; the overlay has its own data in both.</summary>
    private static void MakeImages(TempDir t, string overlay)
    {
        Qemu.Img("create", "-q", "-f", "raw", t["old.raw"], "4M");
        Tool.Fill(t["old.raw"], "raw", "write -P 0x01 0 4M");
        Qemu.Img("create", "-q", "-f", "raw", t["new.raw"], "3M");
        Tool.Fill(t["new.raw"], "raw", "write -P 0x01 0 1M", "write -P 0x02 1M 1M", "write -P 0x01 2M 1M");
        Qemu.CreateQed(t[overlay], "4M", backing: "old.raw", backingFormat: "raw");
        Tool.Fill(t[overlay], "qed", "write -P 0x0a 100k 8k", "write -P 0x0b 1100k 8k", "write -z 2M 64k");
    }

    [Fact]
    public void Safe_rebase_keeps_what_the_image_shows_as_qemu_img_does()
    {
        using var t = new TempDir();
        MakeImages(t, "ov.qed");
        Qemu.ToRaw(t["ov.qed"], t["before.raw"]);
        File.Copy(t["ov.qed"], t["qemu.qed"]);

        Env.Qf("rebase", "-b", "new.raw", "-F", "raw", t["ov.qed"]).Ok();
        Qemu.Img("rebase", "-b", "new.raw", "-F", "raw", t["qemu.qed"]);
        Tool.AssertClean(t["ov.qed"]);
        Assert.Contains("backing file: new.raw", Tool.Info(t["ov.qed"]));
        Tool.AssertSameContent(t["before.raw"], t["ov.qed"]);
        Tool.AssertSameContent(t["qemu.qed"], t["ov.qed"]);
        // Only what differs was copied: where old and new agree, the image still reads from the new backing file.
        Assert.DoesNotContain(Tool.OwnData(t["ov.qed"]), r => Tool.Overlaps(r, 128 << 10, 896 << 10) || Tool.Overlaps(r, (2L << 20) + 65536, 960 << 10));
    }

    [Fact]
    public void Unsafe_rebase_only_renames_and_empty_name_detaches()
    {
        using var t = new TempDir();
        MakeImages(t, "ov.qed");
        Qemu.ToRaw(t["ov.qed"], t["before.raw"]);
        File.Copy(t["ov.qed"], t["qemu.qed"]);

        Env.Qf("rebase", "-u", "-b", "new.raw", "-F", "raw", t["ov.qed"]).Ok();
        Qemu.Img("rebase", "-u", "-b", "new.raw", "-F", "raw", t["qemu.qed"]);
        Tool.AssertClean(t["ov.qed"]);
        Tool.AssertSameContent(t["qemu.qed"], t["ov.qed"]);
        Assert.NotEqual(0, Qemu.ImgRaw("compare", t["before.raw"], t["ov.qed"]).ExitCode);

        // -u works when the old backing file is gone; a long name moves the name within the header.
        File.Move(t["new.raw"], t["renamed-backing-file-with-a-much-longer-name.raw"]);
        Env.Qf("rebase", "-u", "-b", "renamed-backing-file-with-a-much-longer-name.raw", t["ov.qed"]).Ok();
        Tool.AssertClean(t["ov.qed"]);
        Tool.AssertSameContent(t["qemu.qed"].Replace("qemu.qed", "ov.qed"), t["ov.qed"]);
        Assert.Contains("backing file format: raw", Tool.Info(t["ov.qed"]));

        Qemu.ToRaw(t["ov.qed"], t["view.raw"]);
        Env.Qf("rebase", "-p", "-b", "", t["ov.qed"]).Ok();
        Assert.DoesNotContain("backing file", Tool.Info(t["ov.qed"]));
        Tool.AssertClean(t["ov.qed"]);
        Tool.AssertSameContent(t["view.raw"], t["ov.qed"]);
    }

    [Fact]
    public void Names_that_do_not_fit_and_images_in_use_are_refused_unchanged()
    {
        using var t = new TempDir();
        MakeImages(t, "ov.qed");
        Qemu.CreateQed(t["small.qed"], "1M", clusterSize: 4096);
        string hash = ImageFile.Hash(t["small.qed"]);
        Tool.AssertRefused(Env.Qf("rebase", "-u", "-b", new string('x', 4050), t["small.qed"]), "does not fit");
        Assert.Equal(hash, ImageFile.Hash(t["small.qed"]));

        Tool.AssertRefused(Env.Qf("rebase", "-b", "ov.qed", t["ov.qed"]), "its own backing file");
        using var m = Mounted.Start(t.Dir("mnt"), t["ov.qed"]);
        hash = ImageFile.Hash(t["ov.qed"]);
        Tool.AssertRefused(Env.Qf("rebase", "-u", "-b", "new.raw", "-F", "raw", t["ov.qed"]), "in use");
        Tool.AssertRefused(Env.Qf("rebase", "-b", "new.raw", "-F", "raw", t["ov.qed"]), "in use");
        Assert.Equal(hash, ImageFile.Hash(t["ov.qed"]));
    }

    [Fact]
    public void Interrupted_safe_rebase_leaves_the_image_showing_the_same_on_its_old_backing()
    {
        using var t = new TempDir();
        Tool.RawFull(t["old.raw"], 8, 0x01);
        Tool.RawFull(t["new.raw"], 8, 0x02);
        Qemu.CreateQed(t["ov.qed"], "8M", backing: "old.raw", backingFormat: "raw");
        Qemu.ToRaw(t["ov.qed"], t["before.raw"]);

        using var p = new Background(Env.Qedfuse, "rebase", "-p", "-r", "1M", "-b", "new.raw", "-F", "raw", t["ov.qed"]);
        RunResult r = Tool.InterruptMidway(p);
        Assert.True(r.ExitCode == 130, $"expected exit 130 after SIGINT: {r}");
        Tool.AssertClean(t["ov.qed"]);
        Assert.Contains("backing file: old.raw", Tool.Info(t["ov.qed"]));
        Tool.AssertSameContent(t["before.raw"], t["ov.qed"]);
        // Stopped midway: some clusters were copied in, not all.
        long copied = Tool.OwnData(t["ov.qed"]).Sum(d => d.Length);
        Assert.True(copied > 0 && copied < 8L << 20, $"{copied} bytes copied before the interruption");
    }
}
