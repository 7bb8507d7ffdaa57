using System.Text.Json;

namespace QedFuse.Block.Tests;

/// <summary>Images created by the engine and by qemu-img: accepted by the other side, same info, same bytes.</summary>
public class CreateInfoTests
{
    public enum Backing
    {
        None,
        Raw,
        Qed,
        RawInSubdir,
    }

    private static (string? Name, string? Format) MakeBacking(TempDir dir, Backing kind)
    {
        switch (kind)
        {
            case Backing.None:
                return (null, null);
            case Backing.Raw:
                Engine.CreateRawBacking(dir.File("b.raw"), 3 * 65536 + 100, 1);
                return ("b.raw", "raw");
            case Backing.RawInSubdir:
                Directory.CreateDirectory(dir.File("sub"));
                Engine.CreateRawBacking(dir.File("sub/b.raw"), 100000, 1);
                return ("sub/b.raw", "raw");
            default:
                Qemu.Img("create", "-f", "qed", dir.File("b.qed"), "3M");
                return ("b.qed", "qed");
        }
    }

    public static TheoryData<long?, int, int, Backing> Cases() => new()
    {
        { 1000, 65536, 4, Backing.None },          // not a multiple of 512: rounded up to 1024
        { 1 << 20, 4096, 1, Backing.None },        // table_size 1 (qemu-img check cannot open these; see test)
        { (1 << 20) + 1, 4096, 2, Backing.None },
        { 10L << 30, 65536, 16, Backing.None },    // large, sparse
        { (5 << 20) + 512, 1 << 20, 4, Backing.None },
        { 5 << 20, 65536, 4, Backing.Raw },
        { null, 4096, 4, Backing.Raw },            // size taken from the backing file (not a 512 multiple)
        { 4 << 20, 65536, 4, Backing.Qed },
        { null, 65536, 8, Backing.Qed },
        { 1 << 20, 4096, 4, Backing.RawInSubdir },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void EngineAndQemuImgCreateTheSameImage(long? size, int c, int t, Backing backing)
    {
        using var dir = new TempDir();
        var (bName, bFormat) = MakeBacking(dir, backing);
        string ours = dir.File("ours.qed");
        string theirs = dir.File("theirs.qed");

        {
            ImageOpener.Create(ours, "qed", new ImageCreateOptions
            {
                Size = size,
                BackingFile = bName,
                BackingFormat = bFormat,
                FormatOptions = new Dictionary<string, string> { ["cluster_size"] = c.ToString(), ["table_size"] = t.ToString() },
            });
        }

        var args = new List<string> { "create", "-f", "qed", "-o", $"cluster_size={c},table_size={t}" };
        if (bName is not null)
        {
            args.AddRange(["-b", bName, "-F", bFormat!]);
        }

        args.Add(theirs);
        if (size is not null)
        {
            args.Add(size.Value.ToString());
        }

        Qemu.Img([.. args]);

        // Same layout, byte for byte (header, backing name, L1 table, file length).
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(ours).Length);
        Files.AssertBytesEqual(File.ReadAllBytes(theirs), File.ReadAllBytes(ours), 0, "engine-created file vs qemu-img-created file");

        ImageInfo ourInfo;
        using (IBlockImage image = Engine.OpenRo(ours))
        {
            ourInfo = image.GetInfo();
        }

        using (IBlockImage image = Engine.OpenRo(theirs))
        {
            ImageInfo i = image.GetInfo();
            Assert.Equal(ourInfo with { Filename = "", ActualSize = 0, FullBackingFilename = null },
                i with { Filename = "", ActualSize = 0, FullBackingFilename = null });
        }

        if (t == 1)
        {
            // QEMU 7.2 cannot open table_size=1 images at all ("QED table offset is invalid").
            Assert.NotEqual(0, Qemu.Run("qemu-img", ["check", ours]).ExitCode);
            return;
        }

        Qemu.AssertClean(ours);
        JsonElement info = Qemu.Info(ours);
        Assert.Equal(info.GetLong("virtual-size"), ourInfo.VirtualSize);
        Assert.Equal(info.GetLong("cluster-size"), ourInfo.ClusterSize);
        Assert.Equal(info.GetStringOrNull("backing-filename"), ourInfo.BackingFilename);
        Assert.Equal(info.GetStringOrNull("backing-filename-format"), ourInfo.BackingFilenameFormat);
        Assert.Equal(info.GetStringOrNull("full-backing-filename"), ourInfo.FullBackingFilename);
        Assert.Equal("qed", ourInfo.Format);
        if (size is not null)
        {
            Assert.Equal((size.Value + 511) / 512 * 512, ourInfo.VirtualSize);
        }
    }

    [Fact]
    public void CreateRefusesBadParameters()
    {
        using var dir = new TempDir();
        string img = dir.File("x.qed");
        void Bad(ImageCreateOptions o, string mention)
        {
            var e = Assert.Throws<BadImageException>(() => ImageOpener.Create(img, "qed", o));
            Assert.Contains(mention, e.Message);
            Assert.False(File.Exists(img));
        }

        Dictionary<string, string> Opt(string k, string v) => new() { [k] = v };
        Bad(new ImageCreateOptions { Size = 1 << 20, FormatOptions = Opt("cluster_size", "3000") }, "cluster_size");
        Bad(new ImageCreateOptions { Size = 1 << 20, FormatOptions = Opt("cluster_size", "2048") }, "cluster_size");
        Bad(new ImageCreateOptions { Size = 1 << 20, FormatOptions = Opt("cluster_size", "128M") }, "cluster_size");
        Bad(new ImageCreateOptions { Size = 1 << 20, FormatOptions = Opt("table_size", "3") }, "table_size");
        Bad(new ImageCreateOptions { Size = 1 << 20, FormatOptions = Opt("table_size", "32") }, "table_size");
        Bad(new ImageCreateOptions { Size = 2L << 30, FormatOptions = new Dictionary<string, string> { ["cluster_size"] = "4096", ["table_size"] = "1" } }, "size");
        Bad(new ImageCreateOptions { Size = 1 << 20, BackingFile = "missing.raw" }, "missing.raw");
        Bad(new ImageCreateOptions(), "size");

        Engine.CreateQed(img, 1 << 20);
        string h = Files.Hash(img);
        Assert.Throws<BadImageException>(() => Engine.CreateQed(img, 2 << 20));
        Assert.Equal(h, Files.Hash(img));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.creating-*"));
    }
}
