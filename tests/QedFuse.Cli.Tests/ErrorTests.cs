using System.Diagnostics;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>Bad input: one line on stderr naming the file, non-zero exit, nothing mounted, nothing changed.</summary>
public sealed class ErrorTests
{
    private static void AssertRefused(RunResult r, string mountPoint, string mustName)
    {
        Assert.True(r.ExitCode != 0, $"expected failure: {r}");
        string[] lines = Text.Lines(r.Stderr);
        Assert.True(lines.Length == 1, $"expected exactly one line on stderr: {r}");
        Assert.Contains(mustName, lines[0]);
        Assert.False(Mounts.IsMounted(mountPoint), $"{mountPoint} is mounted after a failed mount");
        Assert.Empty(Directory.EnumerateFileSystemEntries(mountPoint));
    }

    [Fact]
    public void MissingImage()
    {
        using var t = new TempDir();
        string mnt = t.Dir("mnt");
        AssertRefused(Mounted.TryMount(mnt, [t["nope.qed"]], []), mnt, t["nope.qed"]);
    }

    [Fact]
    public void CorruptHeaderIsNotAnImage()
    {
        using var t = new TempDir();
        string mnt = t.Dir("mnt");
        // QED magic, then a header that makes no sense (cluster size 3).
        byte[] junk = new byte[4096];
        "QED\0"u8.CopyTo(junk);
        junk[4] = 3;
        File.WriteAllBytes(t["junk.qed"], junk);
        string hash = ImageFile.Hash(t["junk.qed"]);
        AssertRefused(Mounted.TryMount(mnt, [t["junk.qed"]], []), mnt, t["junk.qed"]);
        Assert.Equal(hash, ImageFile.Hash(t["junk.qed"]));

        File.WriteAllBytes(t["short.qed"], [(byte)'Q', (byte)'E', (byte)'D', 0, 0, 0, 1, 0]);
        AssertRefused(Mounted.TryMount(mnt, [t["short.qed"]], []), mnt, t["short.qed"]);
    }

    [Fact]
    public void FileThatIsNotAnImageIsRefused()
    {
        using var t = new TempDir();
        string mnt = t.Dir("mnt");
        File.WriteAllText(t["notes.qed"], "not a disk image, just text\n");
        string hash = ImageFile.Hash(t["notes.qed"]);
        AssertRefused(Mounted.TryMount(mnt, [t["notes.qed"]], []), mnt, t["notes.qed"]);
        Assert.Equal(hash, ImageFile.Hash(t["notes.qed"]));
    }

    [Fact]
    public void MissingBackingFile()
    {
        using var t = new TempDir();
        string mnt = t.Dir("mnt");
        Run.Exec("truncate", "-s", "64M", t["base.raw"]).Ok();
        Qemu.CreateQed(t["top.qed"], "64M", backing: "base.raw", backingFormat: "raw");
        File.Delete(t["base.raw"]);
        string hash = ImageFile.Hash(t["top.qed"]);
        AssertRefused(Mounted.TryMount(mnt, [t["top.qed"]], []), mnt, "base.raw");
        Assert.Equal(hash, ImageFile.Hash(t["top.qed"]));
        Assert.False(ImageFile.NeedCheck(t["top.qed"]));
    }

    [Fact]
    public void BadMountPoint()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        string hash = ImageFile.Hash(t["a.qed"]);
        RunResult r = Mounted.TryMount(t["nodir"], [t["a.qed"]], []);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(Text.Lines(r.Stderr));
        Assert.Contains(t["nodir"], r.Stderr);
        Assert.False(Directory.Exists(t["nodir"]));

        File.WriteAllText(t["file"], "x");
        r = Mounted.TryMount(t["file"], [t["a.qed"]], []);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(Text.Lines(r.Stderr));
        Assert.Contains(t["file"], r.Stderr);
        Assert.False(Mounts.IsMounted(t["file"]));
        Assert.Equal(hash, ImageFile.Hash(t["a.qed"]));
    }

    [Fact]
    public void SecondReadWriteMountOfTheSameImageIsRefused()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        using var first = Mounted.Start(t.Dir("m1"), t["a.qed"]);
        string m2 = t.Dir("m2");
        AssertRefused(Mounted.TryMount(m2, [t["a.qed"]], []), m2, t["a.qed"]);
        // The first mount is unharmed.
        Assert.True(Mounts.IsQedfuseMount(first.MountPoint));
        Assert.Equal(64L << 20, new FileInfo(first.File()).Length);
        Assert.Equal(0, first.Unmount().ExitCode);
        Assert.False(ImageFile.NeedCheck(t["a.qed"]));
    }

    [Fact]
    public void MountingOverAnExistingQedfuseMountIsRefused()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        Qemu.CreateQed(t["b.qed"], "64M");
        using var first = Mounted.Start(t.Dir("m1"), t["a.qed"]);
        RunResult r = Mounted.TryMount(first.MountPoint, [t["b.qed"]], []);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(Text.Lines(r.Stderr));
        Assert.True(Mounts.IsQedfuseMount(first.MountPoint));
        Assert.Equal(Path.Combine(first.MountPoint, "a.raw"), Directory.GetFiles(first.MountPoint).Single());
    }

    [Fact]
    public void TwoImagesWithTheSameNameIsAUsageError()
    {
        using var t = new TempDir();
        Qemu.CreateQed(Path.Combine(t.Dir("x"), "disk.qed"), "64M");
        Qemu.CreateQed(Path.Combine(t.Dir("y"), "disk.qcow2x"), "64M");
        string mnt = t.Dir("mnt");
        RunResult r = Mounted.TryMount(mnt, [t["x/disk.qed"], t["y/disk.qcow2x"]], []);
        AssertRefused(r, mnt, "disk.raw");
    }

    [Fact]
    public void TwoImagesInOneMount()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        Qemu.CreateQed(t["b.qed"], "32M", 4096, 2);
        Qemu.Io(t["a.qed"], "write -P 0xaa 0 1M");
        Qemu.Io(t["b.qed"], "write -P 0xbb 0 1M");
        using var m = Mounted.Start(t.Dir("mnt"), t["a.qed"], t["b.qed"]);
        Assert.Equal(["a.raw", "b.raw"], Directory.GetFiles(m.MountPoint).Select(Path.GetFileName).Order());
        Assert.Equal(32L << 20, new FileInfo(m.File(1)).Length);
        Assert.Equal(0xbb, ImageFile.ReadRange(m.File(1), 100, 1)[0]);
        Assert.Equal(0xaa, ImageFile.ReadRange(m.File(0), 100, 1)[0]);
    }

    [Fact]
    public void UnmountOfANonQedfuseDirectoryFails()
    {
        using var t = new TempDir();
        string dir = t.Dir("plain");
        RunResult r = Env.Qf("unmount", dir);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(dir, r.Stderr);
        r = Env.Qf("unmount", t["missing"]);
        Assert.NotEqual(0, r.ExitCode);
    }

    [Fact]
    public void MountReturnsWithStdoutPipeClosed()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        string mnt = t.Dir("mnt");
        var sw = Stopwatch.StartNew();
        try
        {
            // $(...) waits for EOF on the pipe, not for the launcher's exit.
            RunResult r = Run.Sh($"out=$({Env.Qedfuse} mount {t["a.qed"]} {mnt}); echo \"rc=$? out=[$out]\"", TimeSpan.FromSeconds(20));
            Assert.Equal(0, r.ExitCode);
            Assert.Equal("rc=0 out=[]", r.Stdout.Trim());
            Assert.True(Mounts.IsQedfuseMount(mnt));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"took {sw.Elapsed}");
        }
        finally
        {
            Env.Qf("unmount", mnt);
            Mounts.ForceCleanup(mnt);
        }
    }
}
