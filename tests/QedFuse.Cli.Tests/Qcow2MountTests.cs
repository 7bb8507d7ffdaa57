using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>qcow2 through the CLI: mounts serve what QEMU wrote, writes through a mount are what QEMU reads back, snapshots stay intact.</summary>
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
    public void ReadWriteMountWritesWhatQemuReadsBack()
    {
        using var t = new TempDir();
        string img = t["vm.qcow2"];
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "16M");
        Qemu.IoFormat(img, "qcow2", "write -P 0x41 0 1M", "write -c -P 0x42 2M 4k");
        Qemu.Img("snapshot", "-c", "before", img);
        Qemu.ToRaw(img, t["before.raw"]);
        byte[] data = ImageFile.Bytes(3 << 20, 7);
        using (var m = Mounted.Start(t.Dir("mnt"), [img], []))
        {
            using (var f = new FileStream(m.File(), FileMode.Open, FileAccess.Write))
            {
                f.Position = 500_000;
                f.Write(data);
                f.Flush(flushToDisk: true);
            }

            Assert.Equal(0, Run.Exec("fallocate", "-p", "-o", "8M", "-l", "1M", m.File()).ExitCode);
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Assert.Equal(0, Qemu.Check(img).ExitCode);
        byte[] expected = File.ReadAllBytes(t["before.raw"]);
        data.CopyTo(expected, 500_000);
        Array.Clear(expected, 8 << 20, 1 << 20);
        File.WriteAllBytes(t["expected.raw"], expected);
        Assert.Equal(0, Qemu.ImgRaw("compare", "-f", "qcow2", "-F", "raw", img, t["expected.raw"]).ExitCode);
        Qemu.Img("convert", "-l", "snapshot.name=before", "-f", "qcow2", "-O", "raw", img, t["snap.raw"]);
        Assert.Equal(0, Run.Exec("cmp", t["snap.raw"], t["before.raw"]).ExitCode);
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
