using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.ImageTools;

/// <summary>Shared checks of the image-tool tests: qemu-img as the oracle, one-line refusals.</summary>
internal static class Tool
{
    /// <summary>qemu-img compare says identical (both formats probed, -U so no lock matters).</summary>
    public static void AssertSameContent(string a, string b)
    {
        RunResult r = Qemu.ImgRaw("compare", "-U", a, b);
        Assert.True(r.ExitCode == 0, $"qemu-img compare {a} {b}: {r}");
    }

    /// <summary>qemu-img check finds nothing wrong (exit 0).</summary>
    public static void AssertClean(string qed)
    {
        RunResult r = Qemu.Check(qed);
        Assert.True(r.ExitCode == 0, $"qemu-img check {qed}: {r}");
    }

    /// <summary>A non-zero exit with exactly one line on stderr that contains <paramref name="mustContain"/>.</summary>
    public static void AssertRefused(RunResult r, string mustContain)
    {
        Assert.True(r.ExitCode != 0, $"expected a refusal: {r}");
        string[] lines = Text.Lines(r.Stderr);
        Assert.True(lines.Length == 1, $"expected one line on stderr: {r}");
        Assert.Contains(mustContain, lines[0]);
    }

    /// <summary>Writes a pattern with qemu-io (the oracle writes the source images).</summary>
    public static void Fill(string image, string format, params string[] writes) =>
        Qemu.IoFormat(image, format, writes);

    /// <summary>A raw file of <paramref name="mib"/> MiB filled with one byte.</summary>
    public static void RawFull(string path, int mib, byte pattern)
    {
        Qemu.Img("create", "-q", "-f", "raw", path, $"{mib}M");
        Fill(path, "raw", $"write -P 0x{pattern:x2} 0 {mib}M");
    }

    /// <summary>The data ranges qemu-img map reports as stored in <paramref name="image"/> itself (depth 0).</summary>
    public static List<(long Start, long Length)> OwnData(string image) =>
        System.Text.Json.JsonDocument.Parse(Qemu.Img("map", "-U", "--output=json", image).Stdout).RootElement.EnumerateArray()
            .Where(e => e.GetProperty("depth").GetInt32() == 0 && e.GetProperty("data").GetBoolean())
            .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64())).ToList();

    public static bool Overlaps((long Start, long Length) r, long start, long length) =>
        r.Start < start + length && start < r.Start + r.Length;

    public static string Info(string image) => Qemu.Img("info", "-U", image).Stdout;

    /// <summary>Waits for the first progress line past 0%, interrupts with SIGINT, and returns the result.</summary>
    public static RunResult InterruptMidway(Background p)
    {
        p.WaitForLine(l => l.Contains("/100%)") && !l.Contains("(0.00/"), TimeSpan.FromSeconds(60), "progress past 0%");
        p.Signal(Signals.SIGINT);
        return p.WaitForExit(TimeSpan.FromSeconds(60));
    }
}
