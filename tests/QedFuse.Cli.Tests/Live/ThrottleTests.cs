using System.Diagnostics;
using System.Runtime.InteropServices;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.Live;

/// <summary>
/// I/O limits measured with real workloads through the mount. The limits are far below what
/// even a loaded machine achieves. Each is measured over the 5 s window that starts when the
/// burst allowance is spent: from then on a leaky bucket admits exactly at its rate, so the
/// window's average must land within 10% of the limit. That moment is found in the data (a
/// loaded machine may take a while to spend the burst): the first completion at which the work
/// done has caught up with the limit line, burst + rate x time.
/// </summary>
public sealed class ThrottleTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(8.5);
    private const double Window = 5;

    /// <summary>The rate (units per second) over the 5 s window after the burst of <paramref name="burst"/> units was spent.</summary>
    private double RateAfterBurst(List<(double At, int Bytes, double Latency)> done, Func<(double At, int Bytes, double Latency), double> units,
        double limit, double burst, double slack)
    {
        var sorted = done.OrderBy(d => d.At).ToList();
        double sum = 0;
        double start = double.NaN;
        foreach (var d in sorted)
        {
            sum += units(d);
            if (sum >= burst + limit * d.At - slack)
            {
                start = d.At;
                break;
            }
        }

        Assert.False(double.IsNaN(start), $"the workload never spent its burst allowance ({sum} units in {Duration.TotalSeconds} s)");
        Assert.True(start + Window <= Duration.TotalSeconds, $"the burst allowance took until {start:F1} s to spend: the machine is too slow for this measurement");
        double rate = sorted.Where(d => d.At > start && d.At <= start + Window).Sum(units) / Window;
        output.WriteLine($"limit {limit:F0}/s, burst spent at {start:F2} s, {rate:F0}/s over the next {Window} s ({rate / limit - 1:P1} off)");
        return rate;
    }

    [Fact]
    public unsafe void Mount_time_bandwidth_limit_holds_and_a_request_larger_than_the_budget_still_goes_through()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        const double limit = 2 << 20;
        using var m = Mounted.Start(t.Dir("mnt"), [t["a.qed"]], ["-o", "bps=2M"]);

        var done = LiveTools.Hammer(m.File(), write: true, threads: 2, bytes: 65536, Duration);
        double rate = RateAfterBurst(done, d => d.Bytes, limit, burst: limit, slack: 2 * 65536);
        Assert.InRange(rate, limit * 0.9, limit * 1.1);
        var s = LiveTools.Stats(m.MountPoint, "a.raw");
        Assert.True(s.N("throttled_operations") > 0 && s.N("throttled_time_ns") > 0, "no request was throttled");
        Assert.Equal(done.Count, s.N("wr_operations"));

        // 16 KiB/s with a 1 s burst is a 16 KiB budget; one 128 KiB write is admitted whole, at once.
        Assert.Equal(0, Env.Qf("throttle", m.MountPoint, "--bps", "16K", "--burst-seconds", "1").ExitCode);
        int fd = LibC.OpenOrThrow(m.File(), LibC.O_RDWR | LibC.O_DIRECT);
        byte* buf = (byte*)NativeMemory.AlignedAlloc(128 << 10, 4096);
        try
        {
            var sw = Stopwatch.StartNew();
            Assert.Equal(128 << 10, (long)LibC.PWrite(fd, buf, 128 << 10, 0));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(4), $"a request larger than the budget waited {sw.Elapsed}");
        }
        finally
        {
            NativeMemory.AlignedFree(buf);
            LibC.Close(fd);
        }

        // 0 removes the limit: the next writes are not held back by the bucket the big one filled.
        Assert.Equal(0, Env.Qf("throttle", m.MountPoint, "--bps", "0").ExitCode);
        var after = LiveTools.Hammer(m.File(), write: true, threads: 1, bytes: 65536, TimeSpan.FromSeconds(1));
        Assert.True(after.Sum(d => d.Bytes) > 2 * 16 << 10, $"only {after.Sum(d => d.Bytes)} bytes in 1 s after removing the limit");
        Assert.Equal(0, m.Unmount().ExitCode);
        Assert.Equal(0, Qemu.Check(t["a.qed"]).ExitCode);
    }

    [Fact]
    public void Live_iops_limit_holds_and_a_throttled_file_does_not_stall_its_neighbour()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        Qemu.CreateQed(t["b.qed"], "64M");
        using var m = Mounted.Start(t.Dir("mnt"), [t["a.qed"], t["b.qed"]], ["-o", "ro"]);
        const double limit = 20;
        RunResult set = Env.Qf("throttle", m.MountPoint, "a.raw", "--iops", "20");
        Assert.Equal(0, set.ExitCode);
        Assert.Contains("a.raw: limits now iops=20/s", set.Stdout);

        // Eight readers queue on a.raw, more than the daemon has FUSE workers; b.raw must keep flowing.
        List<(double At, int Bytes, double Latency)> a = [], b = [];
        var throttled = new Thread(() => a = LiveTools.Hammer(m.File(0), write: false, threads: 8, bytes: 4096, Duration));
        throttled.Start();
        b = LiveTools.Hammer(m.File(1), write: false, threads: 1, bytes: 4096, Duration);
        throttled.Join();

        double aRate = RateAfterBurst(a, _ => 1, limit, burst: limit, slack: 2);
        Assert.InRange(aRate, limit * 0.9, limit * 1.1);
        double bRate = b.Count(d => d.At > 1 && d.At <= 1 + Window) / Window;
        output.WriteLine($"beside it, unthrottled b.raw: {bRate:F0} reads/s, slowest {b.Max(d => d.Latency) * 1000:F1} ms");
        Assert.True(bRate > 20 * limit, $"b.raw did {bRate:F0} reads/s beside a throttled a.raw: stalled");
        Assert.True(b.Max(d => d.Latency) < 2, $"a read of b.raw took {b.Max(d => d.Latency):F2} s");

        var sa = LiveTools.Stats(m.MountPoint, "a.raw");
        var sb = LiveTools.Stats(m.MountPoint, "b.raw");
        Assert.True(sa.N("throttled_operations") > 0);
        Assert.Equal(0, sb.N("throttled_operations"));
        Assert.Equal(a.Count, sa.N("rd_operations"));

        Assert.Equal(0, Env.Qf("throttle", m.MountPoint, "a.raw", "--iops", "0").ExitCode);
        var free = LiveTools.Hammer(m.File(0), write: false, threads: 1, bytes: 4096, TimeSpan.FromSeconds(1));
        Assert.True(free.Count > 5 * limit, $"only {free.Count} reads in 1 s after removing the limit");
        Assert.Equal(0, m.Unmount().ExitCode);
    }
}
