using QedFuse.Block.Formats.Qcow2;
using QedFuse.Block.Metadata;

namespace QedFuse.Block.Tests.Qcow2;

/// <summary>
/// The qcow2 cluster allocator against qemu-img check: clusters it hands out are counted on
/// disk exactly once (unreferenced, so qemu-img reports each as one leak and nothing else),
/// new refcount blocks describe themselves, the refcount table grows by moving, frees make
/// the clusters reusable, and nothing it writes is ever a corruption.
/// </summary>
public class RefcountStoreTests
{
    private static void WriteBack(HostFile file, RefcountStore store)
    {
        var (blocks, table, header) = store.TakeWrites();
        new StagedWriteBack().Stage(blocks).Stage(table).Stage(header is { } h ? [h] : []).Run(file);
        if (header is not null)
        {
            // The header points to the moved table: the old one can go, in a pass of its own.
            store.ReleaseOldTable();
            store.ApplyDeferredFrees(store.DeferredFreeCount, _ => true);
            WriteBack(file, store);
        }
    }

    [Theory]
    [InlineData(512, 64, 6000)]   // 64 entries a block, 64 blocks in the first table: grows the table (twice over)
    [InlineData(512, 1, 9000)]    // 4096 entries a block: new blocks, no growth
    [InlineData(4096, 16, 3000)]
    [InlineData(65536, 2, 700)]
    public void AllocatedClustersAreCountedOnceAndFreedClustersAreReused(int c, int refcountBits, int total)
    {
        using var dir = new TempDir();
        string img = dir.File("r.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", $"cluster_size={c},refcount_bits={refcountBits}", img, "64M");
        Qemu.Io(img, "qcow2", "write -P 1 0 64k");
        var allocated = new List<(long Offset, long Count)>();
        var rng = new Random(c + refcountBits);
        using (HostFile file = HostFile.Open(img, writable: true, ImageLock.Role.Writer))
        {
            var store = new RefcountStore(file, Qcow2Layout.Read(file, img));
            for (long done = 0; done < total;)
            {
                long n = Math.Min(total - done, rng.Next(1, 40));
                long offset = store.Allocate(n);
                Assert.True(offset % c == 0 && offset >= c, $"allocated offset {offset}");
                allocated.Add((offset, n));
                done += n;
            }

            WriteBack(file, store);
        }

        uint tableClusters = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(Files.ReadRange(img, 56, 4));
        Assert.Equal(c == 512 && refcountBits == 64, tableClusters > 1); // only the first geometry outgrows one table cluster
        var (exit, report, raw) = Qemu.Check(img, "qcow2");
        Assert.True(exit == 3 && report.GetLong("corruptions") == 0 && report.GetLong("leaks") == total,
            $"expected exactly {total} leaks and no corruption: {raw}");
        long fileEnd = new FileInfo(img).Length;
        var spans = allocated.OrderBy(a => a.Offset).ToList();
        for (int i = 1; i < spans.Count; i++)
        {
            Assert.True(spans[i - 1].Offset + spans[i - 1].Count * c <= spans[i].Offset, "two allocations overlap");
        }

        using (HostFile file = HostFile.Open(img, writable: true, ImageLock.Role.Writer))
        {
            var store = new RefcountStore(file, Qcow2Layout.Read(file, img));
            foreach (var (offset, n) in allocated)
            {
                store.DeferFree(offset, n * c, 0);
            }

            // Not free before the frees are applied (their unlinking is not durable yet).
            Assert.Equal(1UL, store.Get(allocated[0].Offset / c));
            store.ApplyDeferredFrees(store.DeferredFreeCount, _ => true);
            WriteBack(file, store);
        }

        (exit, _, raw) = Qemu.Check(img, "qcow2");
        Assert.True(exit == 0, "after freeing everything: " + raw);

        using (HostFile file = HostFile.Open(img, writable: true, ImageLock.Role.Writer))
        {
            var store = new RefcountStore(file, Qcow2Layout.Read(file, img));
            for (int i = 0; i < 20; i++)
            {
                long offset = store.Allocate(5);
                Assert.True(offset + 5 * c <= fileEnd, $"freed clusters are not reused: allocated {offset}, file end {fileEnd}");
            }

            WriteBack(file, store);
        }

        Assert.Equal(fileEnd, new FileInfo(img).Length);
        (exit, report, raw) = Qemu.Check(img, "qcow2");
        Assert.True(exit == 3 && report.GetLong("leaks") == 100 && report.GetLong("corruptions") == 0, raw.ToString());
    }
}
