namespace QedFuse.Block.Tests;

/// <summary>
/// The README's guarantees under failure, replayed deterministically with <see cref="FaultHook"/>:
/// a failed sync or header rewrite fails the image for good, need-check is on disk before
/// the file grows, and an image that is (or may be) corrupt never loses its need-check flag.
/// </summary>
public class DurabilityTests
{
    private const int Cluster = 65536;

    private static IBlockImage Open(string path, FaultHook hook, List<string>? log = null) =>
        ImageOpener.Open(path, new ImageOpenOptions { HostFileHook = hook, Log = log is null ? null : log.Add });

    [Fact]
    public void FailedSyncFailsTheImageForGoodAndKeepsNeedCheck()
    {
        using var dir = new TempDir();
        string img = dir.File("a.qed");
        Engine.CreateQed(img, 16 << 20);
        var hook = new FaultHook();
        var log = new List<string>();
        byte[] data = Engine.Pattern(Cluster, 1);
        using (IBlockImage image = Open(img, hook, log))
        {
            image.Write(0, data);
            hook.FailOnce(IoEvent.Flush);
            Assert.ThrowsAny<IOException>(image.Flush);
            Assert.Equal(1, hook.Fired);

            // Linux reports a writeback error once: a retry that "succeeds" proves nothing.
            var again = Assert.ThrowsAny<IOException>(image.Flush);
            Assert.Equal(5, again.HResult);
            Assert.Equal(5, Assert.ThrowsAny<IOException>(() => image.Write(1 << 20, data)).HResult);
            Assert.Equal(5, Assert.ThrowsAny<IOException>(() => image.WriteZeroes(0, Cluster, unmap: true)).HResult);
            Assert.Equal(5, Assert.ThrowsAny<IOException>(image.Checkpoint).HResult);
            byte[] back = new byte[Cluster];
            image.Read(0, back);
            Assert.True(data.AsSpan().SequenceEqual(back), "reads must continue after the failure");
            Assert.Equal(5, Assert.ThrowsAny<IOException>(image.Dispose).HResult);
        }

        Assert.True(Files.NeedCheckOnDisk(img), "need-check was cleared after a failed sync");
        Assert.Single(log, l => l.Contains("fdatasync failed", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1)] // setting need-check
    [InlineData(2)] // clearing it at the checkpoint
    public void FailedHeaderRewriteFailsTheImageAndNeedCheckIsAssumedSet(int occurrence)
    {
        using var dir = new TempDir();
        string img = dir.File("a.qed");
        Engine.CreateQed(img, 16 << 20);
        var hook = new FaultHook();
        hook.FailOnce(IoEvent.HeaderUpdate, occurrence);
        using (IBlockImage image = Open(img, hook))
        {
            try
            {
                image.Write(0, Engine.Pattern(Cluster, 2));
                image.Checkpoint();
            }
            catch (IOException)
            {
                // the injected failure, wherever it lands
            }

            Assert.Equal(1, hook.Fired);
            Assert.True(image.GetInfo().DirtyFlag, "a header of unknown state must count as need-check set");
            Assert.Equal(5, Assert.ThrowsAny<IOException>(() => image.Write(2 << 20, Engine.Pattern(512, 3))).HResult);
            Assert.Equal(5, Assert.ThrowsAny<IOException>(image.Flush).HResult);
            Assert.ThrowsAny<IOException>(image.Dispose);
        }

        // Nothing was written after the failure: the image is consistent for QEMU once repaired.
        using (IBlockImage repaired = Engine.OpenRw(img))
        {
        }

        Qemu.AssertClean(img);
    }

    [Fact]
    public void NeedCheckIsOnDiskBeforeTheFileGrowsAfterACheckpoint()
    {
        using var dir = new TempDir();
        string img = dir.File("a.qed");
        Engine.CreateQed(img, 64 << 20);
        var hook = new FaultHook();
        var growsWhileClean = new List<long>();
        hook.Observe((file, e, offset, _) =>
        {
            Span<byte> features = stackalloc byte[8];
            RandomAccess.Read(file.Handle, features, 16);
            if (e == IoEvent.Grow && offset > file.Length && (features[0] & 2) == 0)
            {
                growsWhileClean.Add(offset);
            }
        });
        string crashCopy = dir.File("crash.qed");
        using (IBlockImage image = Open(img, hook))
        {
            image.Write(0, Engine.Pattern(Cluster, 4));
            image.Checkpoint();
            Assert.False(Files.NeedCheckOnDisk(img), "the checkpoint should have marked the image clean");
            image.Write(8 << 20, Engine.Pattern(Cluster, 5));
            Assert.True(growsWhileClean.Count == 0, $"the file grew to {string.Join(", ", growsWhileClean)} while need-check was clear");

            // A crash now: the grown tail is leaked, and only need-check makes the next open reclaim it.
            File.Copy(img, crashCopy);
        }

        using (IBlockImage reopened = Engine.OpenRw(crashCopy))
        {
        }

        Qemu.AssertClean(crashCopy);
    }

    [Fact]
    public void RepairThatLeavesCorruptionRefusesReadWriteAndKeepsNeedCheck()
    {
        using var dir = new TempDir();
        string img = DoublyReferencedCluster(dir);
        var e = Assert.Throws<BadImageException>(() => Engine.OpenRw(img).Dispose());
        Assert.Contains(img, e.Message);
        Assert.Contains("qedfuse check -r all", e.Message);
        Assert.Contains("-o ro", e.Message);
        Assert.Contains("referenced twice", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.True(Files.NeedCheckOnDisk(img), "need-check cleared although a corruption remains");
        using (IBlockImage ro = Engine.OpenRo(img))
        {
            ro.Read(1 << 20, new byte[Cluster]); // read-only still opens; the aliased clusters themselves read as EIO
        }

        Assert.Equal(2, Qemu.Check(img).Exit);
    }

    [Fact]
    public void CheckWithoutFullRepairNeverClearsNeedCheckOfACorruptImage()
    {
        using var dir = new TempDir();
        string img = DoublyReferencedCluster(dir);
        using (IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { SkipRepair = true }))
        {
            Assert.True(image.Check(CheckRepair.Leaks).Corruptions > 0);
        }

        Assert.True(Files.NeedCheckOnDisk(img), "closing after a check that left corruption cleared need-check");
    }

    [Fact]
    public void TruncatedCopyIsRefusedReadWriteAndReadsFailReadOnly()
    {
        using var dir = new TempDir();
        string img = dir.File("a.qed");
        Qemu.Img("create", "-f", "qed", "-o", "cluster_size=4096,table_size=2", img, "16M"); // 4 MiB per L2 table
        Qemu.Io(img, "qed", "write -P 0x11 0 4k", "write -P 0x22 8M 4k");
        long l1 = (long)Files.ReadU64(img, 40);
        long l2Second = (long)Files.ReadU64(img, l1 + 8 * 2);
        Assert.True(l2Second > (long)Files.ReadU64(img, l1), "qemu-io allocated the tables in another order");
        using (var h = File.OpenHandle(img, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(h, l2Second);
        }

        string before = Files.Hash(img);
        var e = Assert.Throws<BadImageException>(() => Engine.OpenRw(img).Dispose());
        Assert.Contains(img, e.Message);
        Assert.Contains("outside", e.Message);
        Assert.Contains("qedfuse check -r all", e.Message);
        Assert.Contains("-o ro", e.Message);
        Assert.Equal(before, Files.Hash(img));

        using IBlockImage ro = Engine.OpenRo(img);
        byte[] head = new byte[4096];
        ro.Read(0, head);
        Assert.All(head, b => Assert.Equal(0x11, b));
        Assert.Equal(5, Assert.Throws<CorruptImageException>(() => ro.Read(8 << 20, new byte[512])).HResult);
    }

    [Fact]
    public void FailedCacheBoundFlushDoesNotFailTheWriteThatTriggeredIt()
    {
        using var dir = new TempDir();
        string img = dir.File("a.qed");
        const int c = 4096; // table_size 2: one 8 KiB L2 table per 4 MiB
        Engine.CreateQed(img, 64 << 20, c, 2);
        var hook = new FaultHook();
        byte[] reference = new byte[64 << 20];
        using (IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { HostFileHook = hook, CacheBytes = 2 * c }))
        {
            hook.FailOnce(IoEvent.L2Alloc);
            for (int k = 0; k < 8; k++)
            {
                byte[] data = Engine.Pattern(c, 10 + k);
                long at = (long)k * (4 << 20);
                image.Write(at, data); // each write needs a new table; the cache holds one
                data.CopyTo(reference, at);
            }

            Assert.Equal(1, hook.Fired);
            image.Flush();
        }

        File.WriteAllBytes(dir.File("ref.raw"), reference);
        Qemu.AssertClean(img);
        Qemu.AssertSameAsRaw(img, dir.File("ref.raw"));
    }

    [Fact]
    public void SizeZeroImageOpensAsAnEmptyDisk()
    {
        using var dir = new TempDir();
        string img = dir.File("empty.qed");
        Qemu.Img("create", "-f", "qed", img, "0");
        using (IBlockImage image = Engine.OpenRw(img))
        {
            Assert.Equal(0, image.VirtualSize);
            image.Read(0, Span<byte>.Empty);
            image.Flush();
        }

        Qemu.AssertClean(img);
        Assert.Equal(0, Qemu.Info(img).GetLong("virtual-size"));
    }

    /// <summary>A need-check image whose two L2 entries point to one cluster: a corruption no repair can fix.</summary>
    private static string DoublyReferencedCluster(TempDir dir)
    {
        string img = dir.File("double.qed");
        Qemu.Img("create", "-f", "qed", img, "16M");
        Qemu.Io(img, "qed", "write -P 0x11 0 64k", "write -P 0x22 64k 64k");
        long l1 = (long)Files.ReadU64(img, 40);
        long l2 = (long)Files.ReadU64(img, l1);
        Files.WriteU64(img, l2 + 8, Files.ReadU64(img, l2));
        Files.WriteU64(img, 16, Files.ReadU64(img, 16) | 2);
        return img;
    }
}
