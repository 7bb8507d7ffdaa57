using System.Text.Json;

namespace QedFuse.Block.Tests;

/// <summary>
/// Images corrupted on purpose: the engine's check counts what qemu-img check counts, repairs
/// what can be repaired, and reads around the damage. Files stay small (QEMU 7.2 reports
/// phantom leaks on 4K-cluster files of 4095 clusters or more: its cluster count divides by
/// cluster_size - 1).
/// </summary>
public class CheckTests
{
    private const int C = 4096;
    private const long Size = 12L << 20; // table_size 4 with 4K clusters: one L2 table maps 8 MiB, so two L1 entries

    private static readonly Lazy<byte[]> Template = new(() =>
    {
        using var dir = new TempDir();
        string img = dir.File("good.qed");
        Qemu.Img("create", "-f", "qed", "-o", $"cluster_size={C},table_size=4", img, Size.ToString());
        Qemu.Io(img, "qed", $"write -P 0x11 0 {4 * C}", $"write -P 0x22 {20 * C} {C}", $"write -P 0x33 {9 << 20} {2 * C}");
        return File.ReadAllBytes(img);
    });

    /// <summary>A copy of a small image QEMU wrote: data in both L2 tables (also used by <see cref="AliasTests"/>).</summary>
    internal static string MakeGood(TempDir dir)
    {
        string img = dir.File("c.qed");
        File.WriteAllBytes(img, Template.Value);
        return img;
    }

    private static long L1Offset(string img) => (long)Files.ReadU64(img, 40);

    private static long L1Entry(string img, int i) => (long)Files.ReadU64(img, L1Offset(img) + 8L * i);

    private static long L2EntryPos(string img, int l1, int l2) => L1Entry(img, l1) + 8L * l2;

    /// <summary>Applies one corruption; returns the virtual offset whose read must now fail, or -1.</summary>
    private static long Corrupt(string img, string what)
    {
        long len = new FileInfo(img).Length;
        switch (what)
        {
            case "l2-past-eof":
                Files.WriteU64(img, L2EntryPos(img, 0, 1), (ulong)(len + 10 * C));
                return C;
            case "l2-misaligned":
                Files.WriteU64(img, L2EntryPos(img, 0, 2), Files.ReadU64(img, L2EntryPos(img, 0, 2)) + 512);
                return 2 * C;
            case "l2-in-header":
                Files.WriteU64(img, L2EntryPos(img, 0, 20), 0x200);
                return 20 * C;
            case "l1-past-eof":
                Files.WriteU64(img, L1Offset(img) + 8, (ulong)(len + 64 * C));
                return 9 << 20;
            case "l1-misaligned":
                Files.WriteU64(img, L1Offset(img) + 8, (ulong)L1Entry(img, 1) + 8);
                return 9 << 20;
            case "double-reference":
                Files.WriteU64(img, L2EntryPos(img, 0, 20), Files.ReadU64(img, L2EntryPos(img, 0, 0)));
                return -1;
            case "leak-at-end":
                using (var f = File.OpenWrite(img)) { f.SetLength(len + 2 * C); }
                return -1;
            case "leak-in-middle":
                Files.WriteU64(img, L2EntryPos(img, 0, 3), 0);
                return -1;
            case "partial-cluster-at-end":
                using (var f = File.OpenWrite(img)) { f.SetLength(len + 100); }
                return -1;
            case "clean":
                return -1;
            default:
                throw new ArgumentException(what);
        }
    }

    public static TheoryData<string> Cases() =>
    [
        "clean", "l2-past-eof", "l2-misaligned", "l2-in-header", "l1-past-eof", "l1-misaligned",
        "double-reference", "leak-at-end", "leak-in-middle", "partial-cluster-at-end",
    ];

    private static CheckResult EngineCheck(string img, CheckRepair repair)
    {
        using IBlockImage image = repair == CheckRepair.None
            ? Engine.OpenRo(img)
            : ImageOpener.Open(img, new ImageOpenOptions { SkipRepair = true });
        return image.Check(repair);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CheckCountsMatchQemuImgCheck(string what)
    {
        using var dir = new TempDir();
        string img = MakeGood(dir);
        Corrupt(img, what);
        string before = Files.Hash(img);

        var (exit, q, raw) = Qemu.Check(img);
        CheckResult r = EngineCheck(img, CheckRepair.None);
        Assert.Equal(before, Files.Hash(img));
        string ctx = $"{what}: qemu {raw}\nours {string.Join("; ", r.Messages)}";
        Assert.True(q.GetLong("corruptions") == r.Corruptions, $"corruptions differ: {ctx}");
        Assert.True(q.GetLong("leaks") == r.Leaks, $"leaks differ: {ctx}");
        Assert.True(q.GetLong("check-errors") == r.CheckErrors, $"check errors differ: {ctx}");
        Assert.True(q.GetLong("total-clusters") == r.TotalClusters, $"total clusters differ: {ctx}");
        Assert.True(q.GetLong("allocated-clusters") == r.AllocatedClusters, $"allocated clusters differ: {ctx}");
        Assert.True(exit == r.ExitCode, $"exit codes differ (qemu {exit}, ours {r.ExitCode}): {ctx}");
        // A partial cluster at the end is no leak for either: both round the file size down to clusters.
        Assert.Equal(what is "clean" or "partial-cluster-at-end", r.ExitCode == 0);
    }

    [Theory]
    [InlineData("l2-past-eof")]
    [InlineData("l2-misaligned")]
    [InlineData("l2-in-header")]
    [InlineData("l1-past-eof")]
    [InlineData("l1-misaligned")]
    public void RepairAllFixesInvalidEntries(string what)
    {
        using var dir = new TempDir();
        string img = MakeGood(dir);
        Corrupt(img, what);
        CheckResult r = EngineCheck(img, CheckRepair.All);
        Assert.True(r.CorruptionsFixed > 0, $"nothing repaired: {string.Join("; ", r.Messages)}");
        Assert.Equal(0, r.Corruptions);

        var (exit, q, raw) = Qemu.Check(img);
        Assert.True(q.GetLong("corruptions") == 0 && exit is 0 or 3, "corruption left after repair: " + raw);
        Assert.Equal(0, EngineCheck(img, CheckRepair.None).Corruptions);
    }

    [Fact]
    public void DoubleReferenceIsNotRepairable()
    {
        using var dir = new TempDir();
        string img = MakeGood(dir);
        Corrupt(img, "double-reference");
        CheckResult r = EngineCheck(img, CheckRepair.All);
        Assert.Equal(2, r.ExitCode);
        Assert.NotEqual(0, Qemu.Check(img).Report.GetLong("corruptions"));
    }

    [Theory]
    [InlineData("l2-past-eof")]
    [InlineData("l1-past-eof")]
    public void NeedCheckImageWithBadEntry_ReadWriteOpenRepairs_ReadOnlyOpenReadsAround(string what)
    {
        using var dir = new TempDir();
        string img = MakeGood(dir);
        long bad = Corrupt(img, what);
        Files.WriteU64(img, 16, Files.ReadU64(img, 16) | 0x02);
        string before = Files.Hash(img);

        using (IBlockImage ro = Engine.OpenRo(img))
        {
            var e = Assert.Throws<CorruptImageException>(() => ro.Read(bad, new byte[10]));
            Assert.Equal(5, e.HResult);
            Assert.Contains(img, e.Message);
            byte[] good = new byte[C];
            ro.Read(0, good); // other regions stay readable
            Assert.All(good, b => Assert.Equal(0x11, b));
            ro.Read(bad >= 8 << 20 ? 20 * C : 9 << 20, new byte[C]); // in the other L2 table
            Assert.Throws<CorruptImageException>(() => ro.Read(bad, new byte[10])); // and the bad one stays bad
            Assert.Throws<CorruptImageException>(() => ro.GetAllocation(bad, C));
        }

        Assert.Equal(before, Files.Hash(img));

        using (IBlockImage rw = Engine.OpenRw(img))
        {
            byte[] b = new byte[10];
            rw.Read(bad, b); // repaired: the entry is cleared, so the range reads as unallocated (zeros)
            Assert.All(b, x => Assert.Equal(0, x));
            Assert.False(Files.NeedCheckOnDisk(img));
        }

        var (_, q, raw) = Qemu.Check(img);
        Assert.True(q.GetLong("corruptions") == 0, "automatic repair left corruption: " + raw);
    }

    [Fact]
    public void RepairNeverTruncatesClustersOfATableItCouldNotWalk()
    {
        // An L2 entry of table 0 points at table 1: table 1 is then "referenced twice" and not
        // walked, so its data clusters (the last one in the file) look unreferenced.
        using var dir = new TempDir();
        string img = MakeGood(dir);
        Qemu.Io(img, "qed", $"write -P 0x44 {(9 << 20) + 16 * C} {C}");
        long length = new FileInfo(img).Length;
        Files.WriteU64(img, L2EntryPos(img, 0, 21), (ulong)L1Entry(img, 1));
        byte[] tail = Files.ReadRange(img, length - C, C);
        Assert.All(tail, b => Assert.Equal(0x44, b)); // the last data cluster, mapped by table 1

        CheckResult r = EngineCheck(img, CheckRepair.All);

        Assert.NotEqual(0, r.Corruptions);
        Assert.Equal(0, r.LeaksFixed);
        Assert.Equal(length, new FileInfo(img).Length);
        Assert.Equal(tail, Files.ReadRange(img, length - C, C));
    }

    [Fact]
    public void CheckOfAFileOfMoreThanIntMaxClustersCountsItsLeaks()
    {
        // A hostile sparse file: 2^31 + 16 clusters, nearly all of them holes past the tables.
        using var dir = new TempDir();
        string img = MakeGood(dir);
        long length = new FileInfo(img).Length;
        long huge = ((1L << 31) + 16) * C;
        using (var f = File.OpenWrite(img)) { f.SetLength(huge); }

        CheckResult r = EngineCheck(img, CheckRepair.None);
        Assert.Equal(0, r.Corruptions);
        Assert.Equal((huge - length) / C, r.Leaks);

        r = EngineCheck(img, CheckRepair.All);
        Assert.Equal((huge - length) / C, r.LeaksFixed);
        Assert.Equal(length, new FileInfo(img).Length);
        Assert.Equal(0, Qemu.Check(img).Exit);
    }
}
