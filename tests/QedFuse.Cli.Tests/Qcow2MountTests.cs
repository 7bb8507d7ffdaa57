using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>qcow2 through the CLI: a read-only mount serves what QEMU wrote; a read-write mount is refused with one line and nothing changes.</summary>
public sealed class Qcow2MountTests
{
    [Fact]
    public void ReadOnlyMountReadsWhatQemuWroteAndMapAgrees()
    {
        using var t = new TempDir();
        string img = t["vm.qcow2"];
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=16384,compression_type=zstd", img, "8M");
        Qemu.IoFormat(img, "qcow2", "write -P 0x41 0 100k", "write -c -P 0x42 1M 16k", "write -z 2M 64k", "write -P 0x43 7M 4097");
        Qemu.ToRaw(img, t["ref.raw"]);
        string hash = ImageFile.Hash(img);
        using (var m = Mounted.Start(t.Dir("mnt"), [img], ["-o", "ro"]))
        {
            Assert.Equal(8L << 20, new FileInfo(m.File()).Length);
            Assert.Equal(0, Run.Exec("cmp", m.File(), t["ref.raw"]).ExitCode);
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Assert.Equal(hash, ImageFile.Hash(img));
        RunResult map = Env.Qf("map", "--output=json", img);
        Assert.Equal(0, map.ExitCode);
        Assert.Equal(Qemu.DataRanges(img), Qemu.DataRangesOf(map.Stdout));
    }

    [Fact]
    public void ReadWriteMountIsRefusedWithOneLine()
    {
        using var t = new TempDir();
        string img = t["vm.qcow2"];
        Qemu.Img("create", "-q", "-f", "qcow2", img, "8M");
        string hash = ImageFile.Hash(img);
        RunResult r = Mounted.TryMount(t.Dir("mnt"), [img], []);
        Assert.NotEqual(0, r.ExitCode);
        Assert.False(Mounts.IsMounted(t["mnt"]));
        string[] lines = Text.Lines(r.Stderr);
        Assert.Single(lines);
        Assert.Contains("qcow2 is read-only in this version; mount with -o ro", lines[0]);
        Assert.Equal(hash, ImageFile.Hash(img));
    }

    [Fact]
    public void CreateInfoAndCheckVerbsServeQcow2()
    {
        using var t = new TempDir();
        string img = t["new.qcow2"];
        Assert.Equal(0, Env.Qf("create", "-f", "qcow2", "-o", "cluster_size=4096,refcount_bits=8,lazy_refcounts=on", img, "64M").ExitCode);
        Assert.Equal(0, Qemu.Check(img).ExitCode);
        Qemu.IoFormat(img, "qcow2", "write -P 1 0 1M", "write -c -P 2 2M 4k");
        Assert.Equal(Qemu.Img("info", "--output=json", img).Stdout.Replace(" ", ""),
            Env.Qf("info", "--output=json", img).Ok().Stdout.Replace(" ", ""));
        RunResult ours = Env.Qf("check", "--output=json", img);
        RunResult theirs = Qemu.ImgRaw("check", "--output=json", img);
        Assert.Equal(theirs.ExitCode, ours.ExitCode);
        Assert.Equal(Normalize(theirs.Stdout), Normalize(ours.Stdout));
    }

    private static string Normalize(string json)
    {
        var doc = System.Text.Json.JsonDocument.Parse(json).RootElement;
        return string.Join(",", doc.EnumerateObject().OrderBy(p => p.Name).Select(p => $"{p.Name}={p.Value}"));
    }
}
