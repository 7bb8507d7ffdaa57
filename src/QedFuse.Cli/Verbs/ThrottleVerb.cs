using System.Text.Json;
using CommandLine;
using CommandLine.Text;
using QedFuse.Cli.Live;

namespace QedFuse.Cli.Verbs;

[Verb("throttle", HelpText = "Set I/O limits on a live mount at once, as QEMU's throttling does (leaky bucket with a burst allowance; "
    + "0 removes a limit; limits not given stay). Without FILE every file of the mount gets them, each on its own. Without limits, shows them. "
    + "The same limits at mount time: -o iops=N,bps=N,iops_read=N,iops_write=N,bps_read=N,bps_write=N,burst_seconds=S.")]
internal sealed class ThrottleOptions
{
    [Value(0, MetaName = "MOUNTPOINT", Required = true)]
    public string MountPoint { get; set; } = "";

    [Value(1, MetaName = "FILE", HelpText = "One file of the mount (disk.raw, or its path).")]
    public string? File { get; set; }

    [Option("iops", HelpText = "Operations per second, reads and writes together.")]
    public string? Iops { get; set; }

    [Option("iops-read", HelpText = "Read operations per second.")]
    public string? IopsRead { get; set; }

    [Option("iops-write", HelpText = "Write operations per second.")]
    public string? IopsWrite { get; set; }

    [Option("bps", HelpText = "Bytes per second, reads and writes together (K/M/G suffixes).")]
    public string? Bps { get; set; }

    [Option("bps-read", HelpText = "Bytes read per second.")]
    public string? BpsRead { get; set; }

    [Option("bps-write", HelpText = "Bytes written per second.")]
    public string? BpsWrite { get; set; }

    [Option("burst-seconds", HelpText = "Burst allowance: an idle file may use this many seconds' worth at once (default 1).")]
    public string? BurstSeconds { get; set; }

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("At most 200 operations and 20 MiB per second for every file", new ThrottleOptions { MountPoint = "/mnt/x", Iops = "200", Bps = "20M" }),
        new("Lift the operations limit of one file", new ThrottleOptions { MountPoint = "/mnt/x", File = "disk.raw", Iops = "0" }),
    ];
}

internal static class ThrottleVerb
{
    public static int Run(ThrottleOptions o)
    {
        string?[] given = [o.Iops, o.IopsRead, o.IopsWrite, o.Bps, o.BpsRead, o.BpsWrite];
        string[] flags = ["--iops", "--iops-read", "--iops-write", "--bps", "--bps-read", "--bps-write"];
        var values = new long?[given.Length];
        for (int i = 0; i < given.Length; i++)
        {
            values[i] = given[i] is { } text ? ThrottleLimits.ParseLimit((LimitKind)i, text, $"{flags[i]} '{text}'") : null;
        }

        double? burst = o.BurstSeconds is { } b ? ThrottleLimits.ParseBurst(b, $"--burst-seconds '{b}'") : null;
        var limits = new ThrottleLimits { Values = values, BurstSeconds = burst };
        string? file = o.File is null ? null : Path.GetFileName(o.File.TrimEnd('/'));

        JsonElement result = ControlClient.Request(o.MountPoint, "throttle", w =>
        {
            if (file is not null)
            {
                w.WriteString("file", file);
            }

            w.WriteStartObject("limits");
            for (int i = 0; i < values.Length; i++)
            {
                if (values[i] is { } v)
                {
                    w.WriteNumber(ThrottleLimits.Names[i], v);
                }
            }

            if (burst is { } s)
            {
                w.WriteNumber(ThrottleLimits.BurstName, s);
            }

            w.WriteEndObject();
        });

        foreach (JsonElement f in result.GetProperty("files").EnumerateArray())
        {
            Console.WriteLine($"{f.GetProperty("name").GetString()}: {(limits.IsEmpty ? "" : "limits now ")}{StatsReport.DescribeLimits(f.GetProperty("limits"))}");
        }

        return 0;
    }
}
