using System.Globalization;

namespace QedFuse.Cli.Mount;

/// <summary>A validated mount request, with absolute paths (the daemon may run elsewhere).</summary>
internal sealed record MountSettings(
    IReadOnlyList<string> Images,
    string MountPoint,
    MountFlags Flags,
    TimeSpan FlushInterval,
    long CacheBytes,
    int Threads)
{
    public bool ReadOnly => Flags.ReadOnly;

    public bool AllowOther => Flags.AllowOther;

    public bool ForceShare => Flags.ForceShare;

    public Live.ThrottleLimits Limits => Flags.Limits;
}

/// <summary>The <c>-o</c> options of a mount, parsed; <see cref="ToString"/> gives them back for the daemon.</summary>
internal sealed record MountFlags
{
    public const string Known = "ro, rw, allow_other, force_share, partitions, format=FMT, uid=N, gid=N, umask=NNN, iops=N, iops_read=N, iops_write=N, bps=N, bps_read=N, bps_write=N, burst_seconds=S";

    public bool ReadOnly { get; init; }

    public bool AllowOther { get; init; }

    public bool ForceShare { get; init; }

    /// <summary>Show each partition of an image's MBR or GPT as its own file.</summary>
    public bool Partitions { get; init; }

    /// <summary>The format to open every image as (null probes; "raw" serves a file as it is).</summary>
    public string? Format { get; init; }

    /// <summary>Owner and group of the exposed files; null: the mounting user's.</summary>
    public uint? Uid { get; init; }

    public uint? Gid { get; init; }

    /// <summary>Permission bits taken away from the exposed files (0666, or 0444 read-only) and the directory (0777).</summary>
    public uint Umask { get; init; } = DefaultUmask;

    /// <summary>I/O limits from the mount options (iops=, bps=, ...).</summary>
    public Live.ThrottleLimits Limits { get; init; } = new();

    public const uint DefaultUmask = 0x12; // 022

    /// <summary>Parses "ro,allow_other,uid=1000,..." (the union of every -o given), or says in plain words what is wrong.</summary>
    public static MountFlags Parse(string? text)
    {
        var f = new MountFlags();
        foreach (string opt in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var limits = f.Limits;
            if (Live.ThrottleLimits.TryParseOption(opt, ref limits))
            {
                f = f with { Limits = limits };
                continue;
            }

            int eq = opt.IndexOf('=');
            string key = eq < 0 ? opt : opt[..eq];
            string? value = eq < 0 ? null : opt[(eq + 1)..];
            f = (key, value) switch
            {
                ("ro", null) => f with { ReadOnly = true },
                ("rw", null) => f with { ReadOnly = false },
                ("allow_other", null) => f with { AllowOther = true },
                ("force_share", null) => f with { ForceShare = true },
                ("partitions", null) => f with { Partitions = true },
                ("format", { Length: > 0 }) => f with { Format = value },
                ("uid", _) => f with { Uid = Id(opt, value, "user", "id -u USER") },
                ("gid", _) => f with { Gid = Id(opt, value, "group", "getent group GROUP") },
                ("umask", _) => f with { Umask = Octal(opt, value) },
                _ => throw new UsageException($"unknown mount option '{opt}' (known: {Known})"),
            };
        }

        if (f.ForceShare && !f.ReadOnly)
        {
            throw new UsageException("force_share needs ro: an image another program writes must not be written by us too");
        }

        return f;
    }

    public override string ToString()
    {
        var opts = new List<string>();
        if (ReadOnly) opts.Add("ro");
        if (AllowOther) opts.Add("allow_other");
        if (ForceShare) opts.Add("force_share");
        if (Partitions) opts.Add("partitions");
        if (Format is not null) opts.Add("format=" + Format);
        if (Uid is { } u) opts.Add("uid=" + u.ToString(CultureInfo.InvariantCulture));
        if (Gid is { } g) opts.Add("gid=" + g.ToString(CultureInfo.InvariantCulture));
        if (Umask != DefaultUmask) opts.Add("umask=" + Convert.ToString(Umask, 8));
        if (!Limits.IsEmpty) opts.AddRange(Limits.ToOptions());
        return string.Join(',', opts);
    }

    /// <summary>Mode bits of an exposed file.</summary>
    public uint FileMode(bool readOnly) => (readOnly ? 0x124u : 0x1B6u) & ~Umask; // 0444 / 0666

    /// <summary>Mode bits of the mount's directory.</summary>
    public uint DirectoryMode => 0x1FFu & ~Umask; // 0777

    private static uint Id(string opt, string? value, string what, string lookup) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out uint id) && id != uint.MaxValue
            ? id
            : throw new UsageException($"mount option '{opt}': give a numeric {what} id (find it with: {lookup})");

    private static uint Octal(string opt, string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 4 || value.Any(c => c is < '0' or > '7'))
        {
            throw new UsageException($"mount option '{opt}': give octal permission bits to take away, such as umask=022 or umask=077");
        }

        return Convert.ToUInt32(value, 8) & 0x1FF;
    }
}
