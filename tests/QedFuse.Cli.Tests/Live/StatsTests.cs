using System.Diagnostics;
using System.Runtime.InteropServices;
using QedFuse.Cli.Live;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.Live;

/// <summary>
/// Runs alone: every close of a descriptor of a mounted file, even a forked child's copy of it, is
/// a FUSE flush, and a child process that another test starts in this process meanwhile would
/// add flushes (and flush the metadata) under the counts being checked.
/// </summary>
[CollectionDefinition(nameof(NoParallelForks), DisableParallelization = true)]
public sealed class NoParallelForks;

/// <summary>qedfuse stats against what a workload through the mount actually did.</summary>
[Collection(nameof(NoParallelForks))]
public sealed class StatsTests
{
    private const int K64 = 65536;

    [Fact]
    public unsafe void Stats_count_the_requests_bytes_and_metadata_work_of_a_workload()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "256M");
        using var m = Mounted.Start(t.Dir("mnt"), [t["a.qed"]], ["--flush-interval", "0"]);
        int fd = LibC.OpenOrThrow(m.File(), LibC.O_RDWR | LibC.O_DIRECT);
        byte* buf = (byte*)NativeMemory.AlignedAlloc(K64, 4096);
        try
        {
            // 10 writes of one fresh cluster each: 10 requests, 10 allocations.
            var writeClock = new Stopwatch();
            for (int i = 0; i < 10; i++)
            {
                new Span<byte>(buf, K64).Fill((byte)(i + 1));
                writeClock.Start();
                Assert.Equal(K64, (long)LibC.PWrite(fd, buf, K64, i * (1L << 20)));
                writeClock.Stop();
            }

            var s = LiveTools.Stats(m.MountPoint, "a.raw");
            Assert.Equal(10, s.N("wr_operations"));
            Assert.Equal(10L * K64, s.N("wr_bytes"));
            Assert.Equal(10, s.N("clusters_allocated"));
            Assert.Equal(0, s.N("rd_operations"));
            Assert.Equal(0, s.N("failed_wr_operations"));
            // The daemon's serving time is part of what the writer waited for.
            Assert.InRange(s.N("wr_total_time_ns"), 1, (long)writeClock.Elapsed.TotalNanoseconds);
            Assert.InRange(s.Latency("wr", "p50"), 1, s.Latency("wr", "p99"));
            Assert.InRange(s.Latency("wr", "p99"), 1, s.Latency("wr", "max"));
            Assert.InRange(s.Latency("wr", "max"), 1, s.N("wr_total_time_ns"));
            // No flusher (--flush-interval 0): the new L2 table and its L1 entry wait in memory.
            Assert.True(s.N("dirty_metadata_bytes") > 0, $"dirty_metadata_bytes {s.N("dirty_metadata_bytes")}");
            Assert.Equal(0, s.N("metadata_flushes"));

            Assert.Equal(0, LiveTools.Fsync(fd));
            s = LiveTools.Stats(m.MountPoint, "a.raw");
            Assert.Equal(1, s.N("flush_operations"));
            Assert.Equal(0, s.N("dirty_metadata_bytes"));
            Assert.Equal(1, s.N("metadata_flushes"));
            Assert.True(s.N("metadata_flush_time_ns") > 0);

            // 5 reads, checked against what was written.
            for (int i = 0; i < 5; i++)
            {
                Assert.Equal(K64, (long)LibC.PRead(fd, buf, K64, i * (1L << 20)));
                Assert.Equal((byte)(i + 1), buf[12345]);
            }

            // A discard, and a write past the end that fails.
            Assert.Equal(0, LibC.Fallocate(fd, 0x02 | 0x01, 20L << 20, K64));
            Assert.True(LibC.PWrite(fd, buf, 4096, 256L << 20) < 0);
            s = LiveTools.Stats(m.MountPoint, "a.raw");
            Assert.Equal(5, s.N("rd_operations"));
            Assert.Equal(5L * K64, s.N("rd_bytes"));
            Assert.Equal(1, s.N("unmap_operations"));
            Assert.Equal(K64, s.N("unmap_bytes"));
            Assert.Equal(1, s.N("failed_wr_operations"));
            Assert.Equal(10, s.N("wr_operations"));
            Assert.True(s.N("metadata_cache_hits") >= 5, $"metadata_cache_hits {s.N("metadata_cache_hits")}");
            Assert.Equal(0, s.N("throttled_operations"));
        }
        finally
        {
            NativeMemory.AlignedFree(buf);
            LibC.Close(fd);
        }

        Assert.Equal(0, m.Unmount().ExitCode);
        // The allocations the daemon counted are the data clusters QEMU finds in the image.
        Assert.Equal(10L * K64, Qemu.DataRanges(t["a.qed"]).Sum(r => r.Length));
    }

    [Fact]
    public void Metadata_cache_misses_and_evictions_follow_the_tables_read()
    {
        using var t = new TempDir();
        // 64 KiB clusters, 4-cluster tables: one L2 table maps 2 GiB and takes 256 KiB.
        Qemu.CreateQed(t["a.qed"], "8G");
        Qemu.Io(t["a.qed"], "write -P 0x61 0 64k", "write -P 0x62 2G 64k");
        using var m = Mounted.Start(t.Dir("mnt"), [t["a.qed"]], ["-o", "ro", "--cache-size", "256K"]);
        int fd = LibC.OpenOrThrow(m.File(), LibC.O_RDONLY | LibC.O_DIRECT);
        try
        {
            var buf = new byte[4096];
            (long Offset, byte Expected)[] reads = [(0, 0x61), (8192, 0x61), (2L << 30, 0x62), (0, 0x61)];
            foreach (var (offset, expected) in reads)
            {
                Assert.Equal(4096, LibC.PReadErr(fd, buf, offset));
                Assert.Equal(expected, buf[100]);
            }
        }
        finally
        {
            LibC.Close(fd);
        }

        // Room for one table: table 1 (miss), table 1 (hit), table 2 (miss, evicts 1), table 1 (miss, evicts 2).
        var s = LiveTools.Stats(m.MountPoint, "a.raw");
        Assert.Equal(3, s.N("metadata_cache_misses"));
        Assert.Equal(1, s.N("metadata_cache_hits"));
        Assert.Equal(2, s.N("metadata_cache_evictions"));
        Assert.Equal(4, s.N("rd_operations"));

        using (var json = System.Text.Json.JsonDocument.Parse(Env.Qf("stats", m.MountPoint, "--output=json").Ok().Stdout))
        {
            var cli = LiveTools.FileStats(json.RootElement, "a.raw");
            Assert.Equal(3, cli.N("metadata_cache_misses"));
            Assert.Equal(4096L * 4, cli.N("rd_bytes"));
        }

        RunResult human = Env.Qf("stats", m.MountPoint).Ok();
        Assert.Contains("a.raw", human.Stdout);
        Assert.Contains("3 misses, 2 evictions", human.Stdout);
        Assert.Equal(0, m.Unmount().ExitCode);
    }

    [Fact]
    public void Latency_histogram_percentiles_match_sorted_samples_within_a_bucket()
    {
        var random = new Random(12);
        var h = new LatencyHistogram();
        long[] samples = Enumerable.Range(0, 20000).Select(_ => (long)Math.Exp(random.NextDouble() * 20)).ToArray();
        foreach (long s in samples)
        {
            h.Record(s);
        }

        Array.Sort(samples);
        foreach (double p in new[] { 0.5, 0.9, 0.99 })
        {
            long exact = samples[(int)Math.Ceiling(p * samples.Length) - 1];
            long reported = h.Percentile(p);
            Assert.InRange(reported, exact, exact + exact / 8 + 1);
        }

        Assert.Equal(samples[^1], h.Max);
        Assert.Equal(0, new LatencyHistogram().Percentile(0.5));
    }
}
