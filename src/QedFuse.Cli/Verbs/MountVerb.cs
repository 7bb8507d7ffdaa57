using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Cli.Live;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Verbs;

[Verb("mount", HelpText = "Show disk images as raw files in MOUNTPOINT (disk.qed -> MOUNTPOINT/disk.raw) until unmounted.")]
internal sealed class MountOptions
{
    [Value(0, Min = 2, MetaName = "IMAGE... MOUNTPOINT", HelpText = "One or more images, then an existing directory.")]
    public IEnumerable<string> Paths { get; set; } = [];

    [Option('o', "options", HelpText = "Comma-separated: ro (read-only), allow_other (other users may access the mount), force_share (with ro: open images another program is writing; each open shows its current state), "
        + "iops=N, iops_read=N, iops_write=N, bps=N, bps_read=N, bps_write=N, burst_seconds=S (I/O limits per file, see 'qedfuse throttle --help').")]
    public string? MountOptionsText { get; set; }

    [Option('f', "foreground", HelpText = "Stay in the foreground until unmounted; Ctrl-C or SIGTERM unmounts cleanly.")]
    public bool Foreground { get; set; }

    [Option("flush-interval", Default = 5.0, HelpText = "Seconds between background metadata flushes (0 = only on fsync and unmount).")]
    public double FlushInterval { get; set; }

    [Option("cache-size", Default = "32M", HelpText = "Memory for cached metadata tables per image (K/M/G suffixes).")]
    public string CacheSize { get; set; } = "32M";

    [Option("threads", Default = 0, HelpText = "Threads serving requests (0 = automatic).")]
    public int Threads { get; set; }

    [Option('v', "verbose", HelpText = "Log each mount-level event: to stderr in the foreground, to syslog (or, without one, the kernel log) once in the background.")]
    public bool Verbose { get; set; }

    [Option("log-file", MetaValue = "PATH", HelpText = "Also append the mount's messages to PATH, with timestamps: start, repairs, errors, unmount (and with -v every event). For machines without syslog.")]
    public string? LogFile { get; set; }

    [Option(DaemonLauncher.ChildOption, Hidden = true)]
    public bool DaemonChild { get; set; }

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("Mount, then use the raw file", new MountOptions { Paths = ["disk.qed", "/mnt/x"] }),
        new("Read-only", new MountOptions { Paths = ["disk.qed", "/mnt/x"], MountOptionsText = "ro" }),
    ];
}

internal static class MountVerb
{
    /// <summary>
    /// mount(8), sshfs and every FUSE tool accept -o more than once and merge the lists in
    /// order; the parser allows an option once, so the repeats are joined into one -o first.
    /// </summary>
    public static string[] MergeRepeatedOptions(string[] args)
    {
        var rest = new List<string>();
        var lists = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--")
            {
                rest.AddRange(args[i..]);
                break;
            }

            if ((a is "-o" or "--options") && i + 1 < args.Length)
            {
                lists.Add(args[++i]);
            }
            else if (a.StartsWith("--options=", StringComparison.Ordinal))
            {
                lists.Add(a["--options=".Length..]);
            }
            else if (a.StartsWith("-o", StringComparison.Ordinal) && a.Length > 2)
            {
                lists.Add(a[2..]);
            }
            else
            {
                rest.Add(a);
            }
        }

        if (lists.Count <= 1)
        {
            return args;
        }

        rest.InsertRange(Math.Min(1, rest.Count), ["-o", string.Join(',', lists)]);
        return [.. rest];
    }

    public static int Run(MountOptions o)
    {
        if (o.DaemonChild)
        {
            DaemonLauncher.DetachChild();
        }

        Log.Verbose = o.Verbose;
        string? logFile = o.LogFile is null ? null : Path.GetFullPath(o.LogFile);
        if (logFile is not null && (o.DaemonChild || o.Foreground))
        {
            Log.OpenFile(logFile);
        }

        if (o.DaemonChild || o.Foreground)
        {
            try
            {
                return Daemon.Serve(Validate(o), o.DaemonChild ? DaemonLauncher.ReportReady : () => { });
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or UsageException)
            {
                // Through the log, so that a --log-file records why the mount failed too.
                Log.Error(e.Message);
                return Program.ExitFailure;
            }
        }

        MountSettings s = Validate(o);

        var args = new List<string> { "mount", DaemonLauncher.ChildFlag };
        if (s.ReadOnly || s.AllowOther || s.ForceShare)
        {
            args.AddRange(["-o", string.Join(',', new[] { s.ReadOnly ? "ro" : null, s.AllowOther ? "allow_other" : null, s.ForceShare ? "force_share" : null }.OfType<string>())]);
        }

        if (!s.Limits.IsEmpty)
        {
            args.AddRange(["-o", string.Join(',', s.Limits.ToOptions())]);
        }

        args.AddRange(["--flush-interval", o.FlushInterval.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        args.AddRange(["--cache-size", s.CacheBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        args.AddRange(["--threads", s.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (o.Verbose)
        {
            args.Add("-v");
        }

        if (logFile is not null)
        {
            args.AddRange(["--log-file", logFile]);
        }

        args.AddRange(s.Images);
        args.Add(s.MountPoint);
        return DaemonLauncher.Launch(args);
    }

    private static MountSettings Validate(MountOptions o)
    {
        var paths = o.Paths.ToList();
        string mountPoint = MountTable.Canonical(paths[^1]);
        var images = paths[..^1].Select(Path.GetFullPath).ToList();

        bool ro = false, allowOther = false, forceShare = false;
        var limits = new ThrottleLimits();
        foreach (string opt in (o.MountOptionsText ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (ThrottleLimits.TryParseOption(opt, ref limits))
            {
                continue;
            }

            switch (opt)
            {
                case "ro": ro = true; break;
                case "rw": ro = false; break;
                case "allow_other": allowOther = true; break;
                case "force_share": forceShare = true; break;
                default: throw new UsageException($"unknown mount option '{opt}' (known: ro, rw, allow_other, force_share, iops=N, iops_read=N, iops_write=N, bps=N, bps_read=N, bps_write=N, burst_seconds=S)");
            }
        }

        if (forceShare && !ro)
        {
            throw new UsageException("force_share needs ro: an image another program writes must not be written by us too");
        }

        if (!Directory.Exists(mountPoint))
        {
            throw new UsageException($"{mountPoint}: mount point is not an existing directory");
        }

        if (MountTable.IsOurMount(mountPoint))
        {
            throw new UsageException($"{mountPoint}: already a qedfuse mount (unmount it first: qedfuse unmount {mountPoint})");
        }

        foreach (string image in images)
        {
            if (!File.Exists(image))
            {
                throw new UsageException(Directory.Exists(image) ? $"{image}: is a directory, not an image" : $"{image}: no such file");
            }
        }

        var clash = images.GroupBy(MountedImage.NameFor).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null)
        {
            throw new UsageException($"{string.Join(" and ", clash)} would both appear as {clash.Key}");
        }

        if (!double.IsFinite(o.FlushInterval) || o.FlushInterval < 0 || o.FlushInterval > 86400)
        {
            throw new UsageException($"--flush-interval {o.FlushInterval}: give seconds from 0 to 86400");
        }

        long cache = ByteSize.TryParse(o.CacheSize) is { } c && c > 0
            ? c
            : throw new UsageException($"--cache-size '{o.CacheSize}': give a size such as 32M");
        if (o.Threads is < 0 or > 256)
        {
            throw new UsageException($"--threads {o.Threads}: give 0 (automatic) to 256");
        }

        return new MountSettings(images, mountPoint, ro, allowOther, forceShare, TimeSpan.FromSeconds(o.FlushInterval), cache, o.Threads, limits);
    }
}
