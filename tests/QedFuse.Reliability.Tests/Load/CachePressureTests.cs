using QedFuse.Block;

namespace QedFuse.Reliability.Tests.Load;

/// <summary>
/// Random sub-cluster writes from several threads through an L2 cache far smaller than the
/// working set, so tables are evicted and reloaded all the time, mirrored into a reference
/// array: every byte must read back, and no cluster may leak (a lost table update shows as
/// both: the data reads as zeros and its cluster is referenced by nothing).
/// </summary>
public sealed class CachePressureTests
{
    [Theory]
    [InlineData(4096, 1, 4)]
    [InlineData(4096, 2, 2)]
    [InlineData(65536, 1, 1)]
    public void TinyCacheLosesNothing(int cluster, int table, int cacheTables)
    {
        string dir = Directory.CreateTempSubdirectory("qedfuse-cache-").FullName;
        try
        {
            string path = Path.Combine(dir, "c.qed");
            const long size = 64L << 20;
            ImageOpener.Create(path, "qed", new ImageCreateOptions
            {
                Size = size,
                FormatOptions = new Dictionary<string, string> { ["cluster_size"] = $"{cluster}", ["table_size"] = $"{table}" },
            });
            var reference = new byte[size];
            using (IBlockImage image = ImageOpener.Open(path, new ImageOpenOptions { CacheBytes = (long)cacheTables * cluster * table }))
            {
                const int threads = 4;
                const int slot = 2048;
                var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
                {
                    var rng = new Random(t);
                    var buf = new byte[slot];
                    for (int i = 0; i < 3000; i++)
                    {
                        // Slots interleave across threads: byte-disjoint, but clusters and tables shared.
                        long s = rng.NextInt64(size / slot / threads) * threads + t;
                        rng.NextBytes(buf);
                        image.Write(s * slot, buf);
                        lock (reference)
                        {
                            buf.CopyTo(reference, s * slot);
                        }
                    }
                })).ToList();
                workers.ForEach(w => w.Start());
                workers.ForEach(w => w.Join());

                var seen = new byte[size];
                image.Read(0, seen);
                long firstBad = Enumerable.Range(0, (int)(size / slot)).FirstOrDefault(i => !seen.AsSpan(i * slot, slot).SequenceEqual(reference.AsSpan(i * slot, slot)), -1);
                Assert.True(firstBad < 0, $"bytes at {firstBad * slot} differ from what was written (open image)");
            }

            using (IBlockImage reopened = ImageOpener.Open(path, new ImageOpenOptions { ReadOnly = true }))
            {
                var seen = new byte[size];
                reopened.Read(0, seen);
                Assert.True(seen.AsSpan().SequenceEqual(reference), "bytes differ after close and reopen");
                CheckResult check = reopened.Check(CheckRepair.None);
                Assert.True(check.Corruptions == 0 && check.Leaks == 0, string.Join("; ", check.Messages));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
