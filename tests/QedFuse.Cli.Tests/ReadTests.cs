using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>Images qemu-io wrote read through the mount exactly as qemu-img convert -O raw shows them.</summary>
public sealed class ReadTests
{
    /// <summary>Writes that cross cluster and L2-table boundaries at odd offsets.</summary>
    private static readonly string[] Pattern =
    [
        "write -P 0x11 0 4096",
        "write -P 0x22 12345 70000",
        "write -P 0x33 1048575 3",
        "write -P 0x44 4190000 20000",
        "write -P 0x55 33554431 1048577",
        "write -P 0x66 67104768 4096",
    ];

    [Theory]
    [InlineData(4096, 2)]
    [InlineData(65536, 4)]
    [InlineData(1048576, 16)]
    public void QemuWrittenImageReadsIdentically(int clusterSize, int tableSize)
    {
        using var t = new TempDir();
        string img = t["disk.qed"];
        Qemu.CreateQed(img, "64M", clusterSize, tableSize);
        Qemu.Io(img, Pattern);
        Qemu.ToRaw(img, t["ref.raw"]);
        string hash = ImageFile.Hash(img);

        using (var m = Mounted.Start(t.Dir("mnt"), [img], ["-o", "ro"]))
        {
            Assert.Equal(new FileInfo(t["ref.raw"]).Length, new FileInfo(m.File()).Length);
            Run.Exec("cmp", t["ref.raw"], m.File()).Ok();
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Assert.Equal(hash, ImageFile.Hash(img));
    }

    [Fact]
    public void BackingChainQedQedRaw()
    {
        using var t = new TempDir();
        Run.Exec("truncate", "-s", "64M", t["base.raw"]).Ok();
        Qemu.IoFormat(t["base.raw"], "raw", "write -P 0xa1 0 8M", "write -P 0xa2 30M 3M", "write -P 0xa3 63M 1M");
        Qemu.CreateQed(t["mid.qed"], "64M", backing: "base.raw", backingFormat: "raw");
        Qemu.Io(t["mid.qed"], "write -P 0xb1 1M 100k", "write -P 0xb2 31000000 70000", "write -z 5M 1M");
        Qemu.CreateQed(t["top.qed"], "64M", 4096, 2, backing: "mid.qed", backingFormat: "qed");
        Qemu.Io(t["top.qed"], "write -P 0xc1 1000 5000", "write -P 0xc2 31100000 12345", "write -P 0xc3 5242880 4096");
        Qemu.ToRaw(t["top.qed"], t["ref.raw"]);

        using var m = Mounted.Start(t.Dir("mnt"), t["top.qed"]);
        Run.Exec("cmp", t["ref.raw"], m.File()).Ok();
    }

    [Fact]
    public void BackingFileSmallerThanImageReadsZerosPastItsEnd()
    {
        using var t = new TempDir();
        Run.Exec("truncate", "-s", "10M", t["base.raw"]).Ok();
        Qemu.IoFormat(t["base.raw"], "raw", "write -P 0x5a 0 10M");
        Qemu.CreateQed(t["top.qed"], "64M", backing: "base.raw", backingFormat: "raw");
        // One cluster straddles the end of the backing file: copy-on-write must pad with zeros.
        Qemu.Io(t["top.qed"], "write -P 0x77 10000000 100", "write -P 0x78 20M 4k");
        Qemu.ToRaw(t["top.qed"], t["ref.raw"]);

        using var m = Mounted.Start(t.Dir("mnt"), t["top.qed"]);
        Assert.Equal(64L << 20, new FileInfo(m.File()).Length);
        Run.Exec("cmp", t["ref.raw"], m.File()).Ok();
        Assert.All(ImageFile.ReadRange(m.File(), 10L << 20, 65536), b => Assert.Equal(0, b));
    }

    [Fact]
    public void ZeroClustersOverBackingReadAsZeros()
    {
        using var t = new TempDir();
        Run.Exec("truncate", "-s", "64M", t["base.raw"]).Ok();
        Qemu.IoFormat(t["base.raw"], "raw", "write -P 0xee 0 64M");
        Qemu.CreateQed(t["top.qed"], "64M", backing: "base.raw", backingFormat: "raw");
        Qemu.Io(t["top.qed"], "write -z 1M 1M", "write -z 8M 64k", "write -P 0x01 8M 512");
        Qemu.ToRaw(t["top.qed"], t["ref.raw"]);
        var map = Qemu.Img("map", "--output=json", t["top.qed"]).Stdout;
        Assert.Contains("\"zero\": true", map); // the zero clusters really are zero clusters

        using var m = Mounted.Start(t.Dir("mnt"), t["top.qed"]);
        Run.Exec("cmp", t["ref.raw"], m.File()).Ok();
        Assert.All(ImageFile.ReadRange(m.File(), 1L << 20, 1 << 20), b => Assert.Equal(0, b));
    }

    [Fact]
    public void OddOffsetsAndLengthsFileStreamDdAndODirect()
    {
        using var t = new TempDir();
        string img = t["disk.qed"];
        Qemu.CreateQed(img, "64M", 4096, 2);
        Qemu.Io(img, Pattern);
        Qemu.Io(img, "write -P 0x99 2M 3M");
        Qemu.ToRaw(img, t["ref.raw"]);
        byte[] reference = File.ReadAllBytes(t["ref.raw"]);

        using var m = Mounted.Start(t.Dir("mnt"), [img], ["-o", "ro"]);
        var rnd = new Random(7);
        using (var fs = new FileStream(m.File(), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1))
        {
            for (int i = 0; i < 300; i++)
            {
                long off = rnd.NextInt64(reference.Length);
                int len = (int)Math.Min(rnd.Next(1, 300_000), reference.Length - off);
                byte[] buf = new byte[len];
                fs.Position = off;
                fs.ReadExactly(buf);
                Assert.True(reference.AsSpan((int)off, len).SequenceEqual(buf), $"FileStream read at {off} length {len} differs");
            }

            // The last bytes, and a read that runs past the end: short read, then EOF.
            byte[] tail = new byte[1000];
            fs.Position = reference.Length - 333;
            Assert.Equal(333, fs.ReadAtLeast(tail, 1000, throwOnEndOfStream: false));
            Assert.True(reference.AsSpan(reference.Length - 333).SequenceEqual(tail.AsSpan(0, 333)));
            Assert.Equal(0, fs.Read(tail));
        }

        foreach (var (bs, skip) in new[] { (1537, 3), (513, 8191), (65537, 511), (4095, 1) })
        {
            string a = t[$"dd-{bs}-ref"], b = t[$"dd-{bs}-mnt"];
            Run.Exec("dd", $"if={t["ref.raw"]}", $"of={a}", $"bs={bs}", $"skip={skip}", "count=300", "status=none").Ok();
            Run.Exec("dd", $"if={m.File()}", $"of={b}", $"bs={bs}", $"skip={skip}", "count=300", "status=none").Ok();
            Run.Exec("cmp", a, b).Ok();
        }

        Run.Exec("dd", $"if={m.File()}", $"of={t["direct.raw"]}", "bs=1M", "iflag=direct", "status=none").Ok();
        Run.Exec("cmp", t["ref.raw"], t["direct.raw"]).Ok();
        Run.Exec("dd", $"if={m.File()}", $"of={t["direct2"]}", "bs=4096", "skip=1000", "count=700", "iflag=direct", "status=none").Ok();
        Run.Exec("dd", $"if={t["ref.raw"]}", $"of={t["direct2ref"]}", "bs=4096", "skip=1000", "count=700", "status=none").Ok();
        Run.Exec("cmp", t["direct2ref"], t["direct2"]).Ok();
    }
}
