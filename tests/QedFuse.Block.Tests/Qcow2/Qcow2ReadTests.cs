namespace QedFuse.Block.Tests.Qcow2;

/// <summary>
/// qcow2 images written by QEMU (qemu-img create + qemu-io: data, zero writes with and without
/// unmap, compressed writes) read back through the engine exactly as qemu-img convert -O raw
/// reads them, over the geometry matrix of versions, cluster sizes and refcount widths.
/// </summary>
public class Qcow2ReadTests
{
    private static long L2Span(long c) => c / 8 * c;

    /// <summary>Two L2 tables and a bit, not a cluster multiple, at most a few tens of MiB.</summary>
    private static long SizeFor(long c) => Math.Min(L2Span(c) * 2, 24L << 20) + 3 * c + 1536;

    private static List<string> Commands(long c, long size, bool v3)
    {
        // The second L2 table where it fits, else past the compressed clusters (2 MiB clusters: 12 of them).
        long span = Math.Max(Math.Min(L2Span(c), size / 2) / c * c, 12 * c);
        var cmds = new List<string>
        {
            $"write -P 0x11 0 {c}",
            $"write -P 0x22 {c / 2 + 3} {c + 100}",
            $"write -P 0x33 {4 * c} {3 * c}",
            $"write -z {5 * c} {c}",             // over data: zero flag with the host cluster kept (v3)
            $"write -z -u {6 * c} {c}",          // unmap allowed: zero flag without a host cluster (v3)
            $"write -z {7 * c} {c}",             // never written: zero plain
            $"write -c -P 0x5a {8 * c} {c}",     // compressed
            $"write -c -P 0x5b {10 * c} {c}",
            $"write -P 0x5c {10 * c + 100} 7",   // a write into a compressed cluster (copy-on-write by QEMU)
            $"write -P 0x44 {span - 1000} 2000",
            $"write -P 0x55 {span + c + 17} 7",
            $"write -P 0x77 {size - 600} 100",
            $"write -P 0x66 {size - 1} 1",
        };
        if (!v3)
        {
            // v2 has no zero clusters: QEMU writes zeros as data; -u changes nothing.
            cmds = cmds.Select(x => x.Replace(" -u ", " ")).ToList();
        }

        return cmds;
    }

    [Theory]
    [InlineData("0.10", 512, 16, "zlib")]
    [InlineData("0.10", 65536, 16, "zlib")]
    [InlineData("0.10", 2 << 20, 16, "zlib")]
    [InlineData("1.1", 512, 1, "zlib")]
    [InlineData("1.1", 1024, 64, "zstd")]
    [InlineData("1.1", 4096, 2, "zlib")]
    [InlineData("1.1", 16384, 4, "zstd")]
    [InlineData("1.1", 65536, 8, "zlib")]
    [InlineData("1.1", 65536, 16, "zstd")]
    [InlineData("1.1", 262144, 32, "zlib")]
    [InlineData("1.1", 2 << 20, 64, "zstd")]
    public void EngineReadsWhatQemuWrote(string compat, int c, int refcountBits, string compression)
    {
        using var dir = new TempDir();
        string img = dir.File("q.qcow2");
        long size = SizeFor(c);
        Qemu.Img("create", "-q", "-f", "qcow2", "-o",
            $"compat={compat},cluster_size={c},refcount_bits={refcountBits},compression_type={compression}", img, size.ToString());
        Qemu.Io(img, "qcow2", [.. Commands(c, size, compat == "1.1")]);
        AssertReadsLikeQemu(img, dir, size);
    }

    /// <summary>Raw base (smaller than the chain), QED middle, qcow2 top: every layer falls through to the next.</summary>
    [Theory]
    [InlineData("qed")]
    [InlineData("qcow2")]
    [InlineData("raw")]
    public void BackingChainsMixingFormatsReadThrough(string middleFormat)
    {
        using var dir = new TempDir();
        const int c = 65536;
        string baseImg = dir.File("base.raw");
        File.WriteAllBytes(baseImg, Engine.Pattern(5 * c + 300, 1)); // smaller than the overlays, not cluster-aligned
        string mid = dir.File($"mid.{middleFormat}");
        if (middleFormat == "raw")
        {
            mid = baseImg;
        }
        else
        {
            Qemu.Img("create", "-q", "-f", middleFormat, "-b", "base.raw", "-F", "raw", mid, (8 * c).ToString());
            Qemu.Io(mid, middleFormat, "write -P 0x21 65536 1000", "write -z 131072 65536");
        }

        string top = dir.File("top.qcow2");
        long size = 12 * c + 512;
        Qemu.Img("create", "-q", "-f", "qcow2", "-b", Path.GetFileName(mid), "-F", middleFormat, top, size.ToString());
        Qemu.Io(top, "qcow2", "write -P 0x31 300000 70000", "write -z 0 4096", "write -c -P 0x32 393216 65536");
        AssertReadsLikeQemu(top, dir, size);

        using IBlockImage image = Engine.OpenRo(top);
        Assert.Equal(middleFormat, image.Backing!.FormatName);
    }

    /// <summary>The active image of a qcow2 with an internal snapshot reads its current state, not the snapshot's.</summary>
    [Fact]
    public void ActiveStateOfAnImageWithSnapshotsReadsLikeQemu()
    {
        using var dir = new TempDir();
        string img = dir.File("s.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "1M");
        Qemu.Io(img, "qcow2", "write -P 1 0 64k", "write -c -P 3 65536 4096");
        Qemu.Img("snapshot", "-c", "first", img);
        Qemu.Io(img, "qcow2", "write -P 2 4096 8192", "write -z 32768 4096", "write -P 4 65536 100");
        AssertReadsLikeQemu(img, dir, 1 << 20);
    }

    private static void AssertReadsLikeQemu(string img, TempDir dir, long size)
    {
        string raw = Qemu.ConvertToRaw(img, dir.Path, "qcow2");
        Assert.Equal(size, new FileInfo(raw).Length);
        byte[] expected = File.ReadAllBytes(raw);
        using IBlockImage image = Engine.OpenRo(img);
        Assert.Equal(size, image.VirtualSize);
        Assert.Equal("qcow2", image.FormatName);
        foreach (int chunk in new[] { (int)size, 4093, 65537 })
        {
            Files.AssertBytesEqual(expected, Engine.ReadChunked(image, 0, (int)size, chunk), 0, $"{Path.GetFileName(img)} chunk={chunk}");
        }
    }
}
