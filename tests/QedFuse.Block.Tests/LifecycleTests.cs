using System.Text.Json;

namespace QedFuse.Block.Tests;

/// <summary>Need-check flag lifecycle, read-only opens, and allocation maps against qemu-img map.</summary>
public class LifecycleTests
{
    [Fact]
    public void NeedCheckIsSetWhileMetadataIsDirtyAndClearedByCheckpointAndClose()
    {
        using var dir = new TempDir();
        string img = dir.File("n.qed");
        const int c = 4096;
        const long size = 1L << 20;
        Engine.CreateQed(img, size, c, 4);
        byte[] reference = new byte[size];
        Assert.False(Files.NeedCheckOnDisk(img));

        using (IBlockImage image = Engine.OpenRw(img))
        {
            Assert.False(Files.NeedCheckOnDisk(img), "a clean open must not set need-check");
            byte[] a = Engine.Pattern(3 * c + 7, 1);
            image.Write(c + 5, a);
            a.CopyTo(reference, c + 5);
            image.Flush();
            Assert.True(Files.NeedCheckOnDisk(img), "need-check must be on disk once metadata was written");

            // Flush made data and metadata durable: a second, read-only view sees everything,
            // and QEMU (forced to share) finds the on-disk metadata consistent.
            using (IBlockImage view = Engine.OpenRo(img, forceShare: true))
            {
                byte[] seen = new byte[size];
                view.Read(0, seen);
                Files.AssertBytesEqual(reference, seen, 0, "second read-only open after Flush");
                // (qemu-img 7.2 info always prints dirty-flag false for QED, so our own view is asked.)
                Assert.True(view.GetInfo().DirtyFlag);
            }

            var check = Qemu.Run("qemu-img", ["check", "-U", "-f", "qed", img]);
            Assert.True(check.ExitCode == 0, "metadata on disk after Flush is not consistent: " + check);
            File.WriteAllBytes(dir.File("ref.raw"), reference);
            Assert.Equal(0, Qemu.Run("qemu-img", ["compare", "-U", "-f", "qed", "-F", "raw", img, dir.File("ref.raw")]).ExitCode);

            image.Checkpoint();
            Assert.False(Files.NeedCheckOnDisk(img), "Checkpoint with nothing in flight must clear need-check");

            // Writes into allocated clusters change no metadata and leave the flag clear.
            byte[] b = Engine.Pattern(100, 2);
            image.Write(c + 50, b);
            b.CopyTo(reference, c + 50);
            image.Flush();
            Assert.False(Files.NeedCheckOnDisk(img), "an in-place write must not set need-check");

            byte[] d = Engine.Pattern(c, 3);
            image.Write(100 * c, d);
            d.CopyTo(reference, 100 * c);
            image.Flush();
            Assert.True(Files.NeedCheckOnDisk(img));
        }

        Assert.False(Files.NeedCheckOnDisk(img), "Dispose must leave need-check clear");
        Qemu.AssertClean(img);
        File.WriteAllBytes(dir.File("ref.raw"), reference);
        Qemu.AssertSameAsRaw(img, dir.File("ref.raw"));
    }

    [Fact]
    public void WritableOpenOfImageWithNeedCheckChecksAndClearsIt_ReadOnlyOpenLeavesItAlone()
    {
        using var dir = new TempDir();
        string img = dir.File("nc.qed");
        Qemu.Img("create", "-f", "qed", "-o", "cluster_size=4096", img, "1M");
        Qemu.Io(img, "qed", "write -P 0x42 8192 5000");
        Files.WriteU64(img, 16, Files.ReadU64(img, 16) | 0x02);
        string before = Files.Hash(img);

        using (IBlockImage ro = Engine.OpenRo(img))
        {
            Assert.True(ro.GetInfo().DirtyFlag);
            byte[] b = new byte[5000];
            ro.Read(8192, b);
            Assert.All(b, x => Assert.Equal(0x42, x));
        }

        Assert.Equal(before, Files.Hash(img));
        var log = new List<string>();
        using (ImageOpener.Open(img, new ImageOpenOptions { Log = log.Add }))
        {
            Assert.False(Files.NeedCheckOnDisk(img), "a writable open must check and then clear need-check");
        }

        Assert.NotEmpty(log);
        Qemu.AssertClean(img);
    }

    [Fact]
    public void ReadOnlyOpenRefusesWritesAndChangesNothing()
    {
        using var dir = new TempDir();
        string img = dir.File("ro.qed");
        Qemu.Img("create", "-f", "qed", "-o", "cluster_size=4096", img, "1M");
        Qemu.Io(img, "qed", "write -P 0x42 0 4096");
        string before = Files.Hash(img);
        using (IBlockImage image = Engine.OpenRo(img))
        {
            Assert.True(image.IsReadOnly);
            var e1 = Assert.ThrowsAny<IOException>(() => image.Write(0, new byte[10]));
            Assert.Equal(30, e1.HResult);
            var e2 = Assert.ThrowsAny<IOException>(() => image.Write(8192, new byte[10])); // would allocate
            Assert.Equal(30, e2.HResult);
            var e3 = Assert.ThrowsAny<IOException>(() => image.WriteZeroes(0, 4096, true));
            Assert.Equal(30, e3.HResult);
            image.Flush();
            image.Checkpoint();
        }

        Assert.Equal(before, Files.Hash(img));

        string raw = dir.File("r.raw");
        File.WriteAllBytes(raw, new byte[8192]);
        string rawBefore = Files.Hash(raw);
        using (IBlockImage image = Engine.OpenRo(raw))
        {
            Assert.Equal("raw", image.FormatName);
            Assert.Equal(30, Assert.ThrowsAny<IOException>(() => image.Write(0, new byte[1])).HResult);
        }

        Assert.Equal(rawBefore, Files.Hash(raw));
    }

    private readonly record struct Run(long Start, long Length, AllocationState State, long Host);

    private static List<Run> Merge(IEnumerable<Run> runs)
    {
        var result = new List<Run>();
        foreach (Run r in runs)
        {
            if (result.Count > 0)
            {
                Run p = result[^1];
                if (p.State == r.State && p.Start + p.Length == r.Start
                    && (r.State != AllocationState.Data || p.Host + p.Length == r.Host))
                {
                    result[^1] = p with { Length = p.Length + r.Length };
                    continue;
                }
            }

            result.Add(r);
        }

        return result;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GetAllocationAgreesWithQemuImgMap(bool withBacking)
    {
        using var dir = new TempDir();
        string img = dir.File("m.qed");
        const int c = 4096;
        const long size = 2 * 1024 * c + 3 * c + 512; // table_size 2: an L2 table maps 4 MiB; cross into the second
        var create = new List<string> { "create", "-f", "qed", "-o", $"cluster_size={c},table_size=2" };
        if (withBacking)
        {
            Engine.CreateRawBacking(dir.File("b.raw"), (int)(size / 2), 3);
            create.AddRange(["-b", "b.raw", "-F", "raw"]);
        }

        Qemu.Img([.. create, img, size.ToString()]);
        Qemu.Io(img, "qed",
            $"write -P 1 0 {3 * c}", $"write -z {3 * c} {2 * c}", $"write -P 2 {10 * c + 1} 10",
            $"write -P 3 {9 * c} {c}", // allocated after cluster 10: host offsets not contiguous with it
            $"write -z {100 * c} {c}", $"write -P 4 {2048L * c - 100} 200", $"write -P 5 {size - 1} 1");

        string json = Qemu.Img("map", "--output=json", "-f", "qed", img);
        var expected = new List<Run>();
        foreach (JsonElement e in JsonDocument.Parse(json).RootElement.EnumerateArray())
        {
            long start = e.GetLong("start"), length = e.GetLong("length"), depth = e.GetLong("depth");
            bool present = e.GetProperty("present").GetBoolean(), data = e.GetProperty("data").GetBoolean();
            AllocationState state = depth > 0 || !present ? AllocationState.Unallocated
                : data ? AllocationState.Data : AllocationState.Zero;
            expected.Add(new Run(start, length, state, state == AllocationState.Data ? e.GetLong("offset") : -1));
        }

        var actual = new List<Run>();
        using (IBlockImage image = Engine.OpenRo(img))
        {
            for (long off = 0; off < size;)
            {
                Allocation a = image.GetAllocation(off, size - off);
                Assert.True(a.Length > 0 && a.Length <= size - off, $"bad run length {a.Length} at {off}");
                actual.Add(new Run(off, a.Length, a.State, a.State == AllocationState.Data ? a.HostOffset : -1));
                off += a.Length;
            }

            // A walk that starts mid-cluster reports the host offset of that byte.
            Allocation mid = image.GetAllocation(c + 100, 10);
            Assert.Equal(AllocationState.Data, mid.State);
            Assert.Equal(10, mid.Length);
            Assert.Equal(expected[0].Host + c + 100, mid.HostOffset);
        }

        Assert.Equal(Merge(expected), Merge(actual));
    }
}
