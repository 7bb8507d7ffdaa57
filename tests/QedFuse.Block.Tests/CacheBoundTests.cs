namespace QedFuse.Block.Tests;

/// <summary>
/// The L2 cache bound holds for one huge request too: dirty tables are written back as the
/// cache fills, so what a request holds in memory is bounded by the cache, not the range.
/// </summary>
public class CacheBoundTests
{
    /// <summary>Counts the L2 table writes of each flush pass (a pass ends with its L1 write).</summary>
    private sealed class TableWriteCounter : IHostFileHook
    {
        private int _sincePass;

        public int MaxPerPass { get; private set; }

        public int Passes { get; private set; }

        public void Before(HostFile file, IoEvent e, long offset, long length)
        {
            if (e is IoEvent.L2Alloc or IoEvent.L2Update)
            {
                MaxPerPass = Math.Max(MaxPerPass, ++_sincePass);
            }
            else if (e == IoEvent.L1Update)
            {
                _sincePass = 0;
                Passes++;
            }
        }

        public void After(HostFile file, IoEvent e, long offset, long length)
        {
        }
    }

    [Fact]
    public void HugePunchOverAnOverlayFlushesAsTheCacheFills()
    {
        const int cluster = 65536;
        const int tableBytes = 2 * cluster; // table_size 2 (QEMU refuses 1): 16384 entries, 1 GiB of virtual space per table
        const long span = 1L << 30;
        const long size = 64 * span;
        const int cacheTables = 4;
        using var dir = new TempDir();
        string backing = dir.File("base.raw");
        byte[] baseBytes = Engine.CreateRawBacking(backing, 1 << 20, 3);
        string img = dir.File("over.qed");
        Engine.CreateQed(img, size, cluster, 2, backing, "raw");

        var counter = new TableWriteCounter();
        using (IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { CacheBytes = cacheTables * tableBytes, HostFileHook = counter }))
        {
            image.WriteZeroes(0, size, unmap: true);
            var back = new byte[baseBytes.Length];
            image.Read(0, back);
            Assert.All(back, b => Assert.Equal(0, b));
        }

        Assert.True(counter.MaxPerPass <= cacheTables + 1,
            $"one flush pass wrote {counter.MaxPerPass} L2 tables; the cache holds {cacheTables}");
        Assert.True(counter.Passes >= size / span / (cacheTables + 1), $"only {counter.Passes} flush passes");
        Qemu.AssertClean(img);
        string io = Qemu.Io(img, "qed", $"read -P 0 0 {1 << 20}", $"read -P 0 {size - cluster} {cluster}");
        Assert.DoesNotContain("fail", io, StringComparison.OrdinalIgnoreCase);
    }
}
