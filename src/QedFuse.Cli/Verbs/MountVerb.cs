using CommandLine;
using QedFuse.Block;
using QedFuse.Cli.Help;
using QedFuse.Cli.Live;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Verbs;

[Verb("mount", HelpText = "Show disk images as raw files in MOUNTPOINT (disk.qed -> MOUNTPOINT/disk.raw) until unmounted. Returns once the mount is live; the images stay open in a background daemon until 'qedfuse unmount'.")]
[UsageLine("qedfuse mount [-o OPTIONS] [-f] [-v] IMAGE... MOUNTPOINT")]
[Example("qedfuse mount disk.qed /mnt/x", "Mount; use /mnt/x/disk.raw as a raw disk (fdisk, dd, mount -o loop), then: qedfuse unmount /mnt/x")]
[Example("qedfuse mount -o ro disk.qed /mnt/x", "Read-only: nothing can change the image")]
[Example("qedfuse mount -o partitions disk.qed /mnt/x", "Also each partition as /mnt/x/disk-p1.raw, ...: mount -o loop /mnt/x/disk-p1.raw /mnt/root")]
[Example("qedfuse mount -o ro,force_share disk.qed /mnt/x", "Look at an image a running VM has open (what you see may be stale)")]
[Example("qedfuse mount -o format=raw,partitions disk.img /mnt/x", "Serve a raw disk file, to reach its partitions without root or losetup")]
[Example("qedfuse mount -o allow_other,uid=1000,gid=1000,umask=027 disk.qed /mnt/x", "Let user 1000 (and group 1000, reading) use the files")]
internal sealed class MountOptions
{
    [Value(0, Min = 1, MetaName = "IMAGE... MOUNTPOINT", HelpText = "One or more images, then an existing directory.")]
    public IEnumerable<string> Paths { get; set; } = [];

    [Option('o', "options", HelpText = "Comma-separated: ro (read-only); allow_other (other users may use the mount; a user other than root needs user_allow_other in /etc/fuse.conf, else it is ignored with a warning); force_share (with ro: open images another program is writing; may show stale data); partitions (each partition of an MBR or GPT table also as NAME-pN.raw, numbered as Linux does; files are then served without the page cache, so no shared writable mmap); format=FMT (qed, raw: open every image as FMT; raw serves a file as it is); uid=N, gid=N (owner of the files; default: yours); umask=NNN (octal bits taken from 0666 files and the 0777 directory; default 022); "
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
                Log.Error(Remedies.Explain(o, e) ?? e.Message);
                return Program.ExitFailure;
            }
        }

        MountSettings s = Validate(o);

        var args = new List<string> { "mount", DaemonLauncher.ChildFlag };
        if (s.Flags.ToString() is { Length: > 0 } flags)
        {
            args.AddRange(["-o", flags]);
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
        if (paths.Count == 1)
        {
            throw new UsageException($"missing MOUNTPOINT: give the directory to mount on after the image (qedfuse mount {paths[0]} /mnt/x)");
        }

        string mountPoint = MountTable.Canonical(paths[^1]);
        var images = paths[..^1].Select(Path.GetFullPath).ToList();

        MountFlags flags = MountFlags.Parse(o.MountOptionsText);
        if (flags.Format is { } format && !ImageOpener.Formats.Any(f => f.Name == format))
        {
            throw new UsageException($"mount option 'format={format}': unknown format (known: {string.Join(", ", ImageOpener.Formats.Select(f => f.Name))})");
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

        var clash = images.GroupBy(i => MountedImage.NameFor(i)).FirstOrDefault(g => g.Count() > 1);
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

        return new MountSettings(images, mountPoint, flags, TimeSpan.FromSeconds(o.FlushInterval), cache, o.Threads);
    }
}
