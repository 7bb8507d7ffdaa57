namespace QedFuse.Block.Tests;

/// <summary>
/// Several threads writing an empty image at once, byte-disjoint but sharing clusters, so that
/// allocating writes race for the same cluster ("one allocation per cluster"), while a flusher
/// thread flushes and checkpoints as the mount's background flusher would.
/// </summary>
public class ConcurrencyTests
{
    [Theory]
    [InlineData(4096, false)]
    [InlineData(65536, false)]
    [InlineData(4096, true)]
    public void ConcurrentWritersSharingClusters(int c, bool withBacking)
    {
        const int threads = 4;
        using var dir = new TempDir();
        long size = 256L * c + 512;
        byte[] reference = new byte[size];
        string? backing = null;
        if (withBacking)
        {
            Engine.CreateRawBacking(dir.File("base.raw"), (int)size, 5).CopyTo(reference, 0);
            backing = "base.raw";
        }

        string img = dir.File("c.qed");
        Engine.CreateQed(img, size, c, 2, backing, withBacking ? "raw" : null);

        // Slices of every cluster, one per thread, in a per-thread shuffled order; some slices
        // straddle two clusters so that a request allocates a run another thread also needs.
        int slice = c / threads;
        var work = new List<(long Offset, int Length)>[threads];
        for (int k = 0; k < threads; k++)
        {
            work[k] = [];
            for (long cl = 0; cl < 256; cl++)
            {
                long off = cl * c + k * slice + (k == threads - 1 && cl % 3 == 0 ? slice / 2 : 0);
                int len = k == threads - 1 && cl % 3 == 0 ? slice : slice; // same length, shifted: crosses into the next cluster
                if (off + len > size)
                {
                    len = (int)(size - off);
                }

                work[k].Add((off, len));
            }

            var rng = new Random(k);
            work[k] = work[k].OrderBy(_ => rng.Next()).ToList();
        }

        // The shifted slices of the last thread overlap the next cluster's slice 0 by half: make
        // thread 0 skip those bytes so the regions stay byte-disjoint.
        for (int i = 0; i < work[0].Count; i++)
        {
            var (off, len) = work[0][i];
            long cl = off / c;
            if (cl > 0 && (cl - 1) % 3 == 0)
            {
                work[0][i] = (off + slice / 2, len - slice / 2);
            }
        }

        var writes = new List<(long, byte[])>[threads];
        for (int k = 0; k < threads; k++)
        {
            writes[k] = work[k].Select((w, i) => (w.Offset, Engine.Pattern(w.Length, k * 100000 + i))).ToList();
            foreach (var (off, data) in writes[k])
            {
                Assert.True(off + data.Length <= size);
                data.CopyTo(reference, off);
            }
        }

        // The reference must be byte-disjoint: check that no byte is claimed twice.
        var claimed = new bool[size];
        foreach (var (off, data) in writes.SelectMany(w => w))
        {
            for (long b = off; b < off + data.Length; b++)
            {
                Assert.False(claimed[b], $"test bug: byte {b} written by two threads");
                claimed[b] = true;
            }
        }

        using (IBlockImage image = Engine.OpenRw(img))
        {
            using var start = new Barrier(threads + 1);
            using var done = new CountdownEvent(threads);
            var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            var workers = Enumerable.Range(0, threads).Select(k => new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    foreach (var (off, data) in writes[k])
                    {
                        image.Write(off, data);
                    }
                }
                catch (Exception e)
                {
                    errors.Enqueue(e);
                }
                finally
                {
                    done.Signal();
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            start.SignalAndWait();
            while (!done.IsSet)
            {
                image.Flush();
                image.Checkpoint();
            }

            Assert.True(workers.All(w => w.Join(TimeSpan.FromSeconds(30))), "writer threads did not finish");
            Assert.Empty(errors);

            byte[] all = new byte[size];
            image.Read(0, all);
            Files.AssertBytesEqual(reference, all, 0, "engine read-back after concurrent writes");
        }

        Qemu.AssertClean(img);
        var (_, report, _) = Qemu.Check(img);
        // One allocation per cluster: every virtual cluster is allocated exactly once.
        Assert.Equal(257, report.GetLong("allocated-clusters"));
        File.WriteAllBytes(dir.File("ref.raw"), reference);
        Qemu.AssertSameAsRaw(img, dir.File("ref.raw"));
    }
}
