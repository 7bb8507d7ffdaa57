using System.Buffers.Binary;
using System.Text.Json;

namespace QedFuse.Block.Tests.Qcow2;

/// <summary>
/// create -f qcow2 makes images qemu-img treats exactly as its own (same info, clean check,
/// same content); info and check report what qemu-img reports for images QEMU wrote,
/// including damaged ones.
/// </summary>
public class Qcow2CreateInfoCheckTests
{
    public static TheoryData<string, string> CreateOptions => new()
    {
        { "", "1G" },
        { "compat=0.10", "10M" },
        { "cluster_size=512", "1G" },
        { "cluster_size=512,refcount_bits=1", "300M" },
        { "cluster_size=2M,refcount_bits=64", "100G" },
        { "lazy_refcounts=on,refcount_bits=8", "5G" },
        { "compression_type=zstd,refcount_bits=32", "3M" },
        { "preallocation=metadata,cluster_size=4096", "3M" },
        { "preallocation=metadata,compat=0.10", "20M" },
        { "preallocation=falloc", "2M" },
        { "preallocation=full,cluster_size=16384,refcount_bits=2", "1M" },
        { "", "0" },
    };

    [Theory]
    [MemberData(nameof(CreateOptions))]
    public void CreatedImagesAreTreatedLikeQemusOwn(string options, string size)
    {
        using var dir = new TempDir();
        string ours = dir.File("ours.qcow2");
        string theirs = dir.File("theirs.qcow2");
        var opts = options.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
        ImageOpener.Create(ours, "qcow2", new ImageCreateOptions { Size = ByteSize.TryParse(size), FormatOptions = opts });
        Qemu.Img(["create", "-q", "-f", "qcow2", .. (options.Length > 0 ? new[] { "-o", options } : []), theirs, size]);

        AssertSameInfo(Qemu.Info(theirs), Qemu.Info(ours));
        var (exit, report, raw) = Qemu.Check(ours, "qcow2");
        Assert.True(exit == 0, "qemu-img check: " + raw);
        var (_, theirReport, _) = Qemu.Check(theirs, "qcow2");
        Assert.Equal(theirReport.GetLong("allocated-clusters"), report.GetLong("allocated-clusters"));
        Assert.Equal(0, Qemu.Run("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", ours, theirs]).ExitCode);

        // Writable by QEMU afterwards, and still clean.
        if (ByteSize.TryParse(size) > 1 << 20)
        {
            Qemu.Io(ours, "qcow2", "write -P 3 65536 70000", "write -z 200000 70000", "discard 65536 4096");
            Assert.Equal(0, Qemu.Check(ours, "qcow2").Exit);
        }
    }

    [Fact]
    public void CreatedOverlayRecordsTheBackingFormatAndReadsThrough()
    {
        using var dir = new TempDir();
        string baseImg = dir.File("base.qed");
        Qemu.Img("create", "-q", "-f", "qed", baseImg, "3M");
        Qemu.Io(baseImg, "qed", "write -P 0x42 0 1M");
        string top = dir.File("top.qcow2");
        ImageOpener.Create(top, "qcow2", new ImageCreateOptions { BackingFile = "base.qed" });
        JsonElement info = Qemu.Info(top);
        Assert.Equal("base.qed", info.GetStringOrNull("backing-filename"));
        Assert.Equal("qed", info.GetStringOrNull("backing-filename-format"));
        Assert.Equal(3L << 20, info.GetLong("virtual-size"));
        Assert.Equal(0, Qemu.Check(top, "qcow2").Exit);
        Assert.Equal(0, Qemu.Run("qemu-img", ["compare", "-f", "qcow2", "-F", "qed", top, baseImg]).ExitCode);
    }

    [Theory]
    [InlineData("extended_l2=on", "extended_l2")]
    [InlineData("data_file=x.raw", "data_file")]
    [InlineData("compat=0.10,lazy_refcounts=on", "lazy_refcounts")]
    [InlineData("compat=0.10,refcount_bits=8", "refcount_bits")]
    [InlineData("refcount_bits=3", "refcount_bits")]
    [InlineData("cluster_size=256", "cluster_size")]
    [InlineData("cluster_size=4M", "cluster_size")]
    [InlineData("compression_type=lz4", "compression_type")]
    [InlineData("preallocation=some", "preallocation")]
    [InlineData("table_size=4", "table_size")]
    public void BadCreateOptionsAreRefusedWithOneLineAndNoFile(string options, string named)
    {
        using var dir = new TempDir();
        string img = dir.File("bad.qcow2");
        var opts = options.Split(',').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
        var e = Assert.ThrowsAny<BadImageException>(() =>
            ImageOpener.Create(img, "qcow2", new ImageCreateOptions { Size = 1 << 20, FormatOptions = opts }));
        Assert.Contains(named, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void InfoMatchesQemuForImagesWithSnapshotsAndBackingFiles()
    {
        using var dir = new TempDir();
        string baseImg = dir.File("b.raw");
        File.WriteAllBytes(baseImg, new byte[1 << 20]);
        string img = dir.File("i.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "compression_type=zstd,lazy_refcounts=on,refcount_bits=4", "-b", "b.raw", "-F", "raw", img, "2M");
        Qemu.Io(img, "qcow2", "write -P 1 0 64k");
        Qemu.Img("snapshot", "-c", "one", img);
        Qemu.Img("snapshot", "-c", "two words", img);

        using IBlockImage image = Engine.OpenRo(img);
        ImageInfo ours = image.GetInfo();
        JsonElement theirs = Qemu.Info(img);
        Assert.Equal(theirs.GetLong("virtual-size"), ours.VirtualSize);
        Assert.Equal(theirs.GetLong("cluster-size"), ours.ClusterSize);
        Assert.Equal(theirs.GetStringOrNull("backing-filename"), ours.BackingFilename);
        Assert.Equal(theirs.GetStringOrNull("backing-filename-format"), ours.BackingFilenameFormat);
        JsonElement data = theirs.GetProperty("format-specific").GetProperty("data");
        Assert.Equal(data.EnumerateObject().Select(p => p.Name), ours.FormatSpecific!.Data.Select(kv => kv.Key));
        foreach (var (key, value) in ours.FormatSpecific.Data)
        {
            Assert.Equal(data.GetProperty(key).ToString(), value is bool b ? (b ? "True" : "False") : value.ToString());
        }

        var snaps = theirs.GetProperty("snapshots").EnumerateArray().ToList();
        Assert.Equal(snaps.Count, ours.Snapshots.Count);
        for (int i = 0; i < snaps.Count; i++)
        {
            Assert.Equal(snaps[i].GetStringOrNull("id"), ours.Snapshots[i].Id);
            Assert.Equal(snaps[i].GetStringOrNull("name"), ours.Snapshots[i].Name);
            Assert.Equal(snaps[i].GetLong("date-sec"), ours.Snapshots[i].DateSeconds);
            Assert.Equal(snaps[i].GetLong("date-nsec"), ours.Snapshots[i].DateNanoseconds);
            Assert.Equal(snaps[i].GetLong("icount"), ours.Snapshots[i].Icount);
        }
    }

    private static ulong GetU64(string path, long offset) => BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(path, offset, 8));

    private static void PutU64(string path, long offset, ulong value)
    {
        byte[] b = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        Files.WriteAt(path, offset, b);
    }

    /// <summary>Damage that qemu-img check must see the same way we do: leaks, corruptions, copied flags.</summary>
    public static TheoryData<string> Damage => new() { "none", "leak", "refcount zero", "copied flag cleared", "copied flag on shared", "l2 unaligned" };

    [Theory]
    [MemberData(nameof(Damage))]
    public void CheckCountsAsQemuDoes(string damage)
    {
        using var dir = new TempDir();
        string img = dir.File("k.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "4M");
        Qemu.Io(img, "qcow2", "write -P 1 0 64k", "write -c -P 2 1M 4k", "write -c -P 3 1052672 4k", "write -z 2M 8k", "write -P 5 3M 4k");
        Qemu.Img("snapshot", "-c", "s", img);
        Qemu.Io(img, "qcow2", "write -P 9 0 4k", "write -P 7 12288 4k");

        Inflict(img, damage);

        var (exit, report, raw) = Qemu.Check(img, "qcow2");
        CheckResult ours;
        using (IBlockImage image = Engine.OpenRo(img))
        {
            ours = image.Check(CheckRepair.None);
        }

        string context = raw.ToString();
        Assert.True(exit == ours.ExitCode, $"exit {ours.ExitCode}, qemu-img: {context}");
        Assert.True(report.GetLong("corruptions") == ours.Corruptions, $"corruptions {ours.Corruptions}; qemu-img: {context}");
        Assert.True(report.GetLong("leaks") == ours.Leaks, $"leaks {ours.Leaks}; qemu-img: {context}");
        Assert.Equal(report.GetLong("allocated-clusters"), ours.AllocatedClusters);
        Assert.Equal(report.GetLong("fragmented-clusters"), ours.FragmentedClusters);
        Assert.Equal(report.GetLong("compressed-clusters"), ours.CompressedClusters);
        Assert.Equal(report.GetLong("total-clusters"), ours.TotalClusters);
        Assert.Equal(report.GetLong("image-end-offset"), ours.ImageEndOffset);
        if (damage != "none")
        {
            Assert.NotEqual(0, exit);
        }
    }

    /// <summary>check -r leaks fixes leaks only; -r all also refcounts below the references and copied flags; qemu-img then finds the image clean.</summary>
    [Theory]
    [InlineData("leak", "leaks")]
    [InlineData("leak", "all")]
    [InlineData("refcount zero", "all")]
    [InlineData("copied flag cleared", "all")]
    [InlineData("copied flag on shared", "all")]
    public void RepairLeavesWhatQemuFindsClean(string damage, string repair)
    {
        using var dir = new TempDir();
        string img = dir.File("r.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "4M");
        Qemu.Io(img, "qcow2", "write -P 1 0 64k", "write -c -P 2 1M 4k", "write -P 5 3M 4k");
        Qemu.Img("snapshot", "-c", "s", img);
        Qemu.Io(img, "qcow2", "write -P 9 0 4k");
        Inflict(img, damage);

        string copy = dir.File("copy.qcow2");
        File.Copy(img, copy);
        var theirs = Qemu.Run("qemu-img", ["check", "--output=json", "-r", repair, "-f", "qcow2", copy]);
        CheckResult ours;
        using (IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { SkipRepair = true }))
        {
            ours = image.Check(repair == "all" ? CheckRepair.All : CheckRepair.Leaks);
        }

        var (exitAfterTheirs, _, _) = Qemu.Check(copy, "qcow2");
        var (exitAfterOurs, _, rawAfterOurs) = Qemu.Check(img, "qcow2");
        Assert.True(exitAfterOurs == exitAfterTheirs, $"after our repair: {rawAfterOurs}; after qemu-img's: exit {exitAfterTheirs}");
        var report = System.Text.Json.JsonDocument.Parse(theirs.Stdout).RootElement;
        Assert.True(report.GetLong("leaks-fixed") == ours.LeaksFixed && report.GetLong("corruptions-fixed") == ours.CorruptionsFixed,
            $"fixed: ours {ours.LeaksFixed} leaks, {ours.CorruptionsFixed} corruptions; qemu-img: {theirs}");
        Assert.Equal(theirs.ExitCode, ours.ExitCode);
    }

    /// <summary>Damages a 4 KiB-cluster image whose first L2 entry is a rewritten (copied) cluster and whose second is shared with a snapshot.</summary>
    private static void Inflict(string img, string damage)
    {
        long l1 = (long)GetU64(img, 40);
        long l2 = (long)(GetU64(img, l1) & 0x00ff_ffff_ffff_fe00UL);
        long refBlock = (long)GetU64(img, (long)GetU64(img, 48));
        long data0 = (long)(GetU64(img, l2) & 0x00ff_ffff_ffff_fe00UL);
        switch (damage)
        {
            case "leak":
                Files.WriteAt(img, refBlock + 2 * (data0 / 4096), [0, 2]);
                break;
            case "refcount zero":
                Files.WriteAt(img, refBlock + 2 * (data0 / 4096), [0, 0]);
                break;
            case "copied flag cleared":
                PutU64(img, l2, GetU64(img, l2) & ~(1UL << 63));
                break;
            case "copied flag on shared":
                PutU64(img, l2 + 8, GetU64(img, l2 + 8) | (1UL << 63));
                break;
            case "l2 unaligned":
                PutU64(img, l2 + 16, GetU64(img, l2 + 16) + 512);
                break;
        }
    }

    private static void AssertSameInfo(JsonElement expected, JsonElement actual)
    {
        foreach (JsonProperty p in expected.EnumerateObject().Where(p => p.Name is not ("filename" or "actual-size")))
        {
            Assert.True(actual.TryGetProperty(p.Name, out JsonElement v), $"qemu-img info lacks '{p.Name}' for our image");
            Assert.Equal(p.Value.ToString(), v.ToString());
        }
    }
}
