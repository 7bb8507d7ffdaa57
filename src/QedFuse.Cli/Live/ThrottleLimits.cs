using System.Globalization;
using QedFuse.Block;

namespace QedFuse.Cli.Live;

/// <summary>The six limits of QEMU's throttling (per second; 0 = none), in the order <see cref="ThrottleLimits.Names"/> lists them.</summary>
internal enum LimitKind
{
    Iops,
    IopsRead,
    IopsWrite,
    Bps,
    BpsRead,
    BpsWrite,
}

/// <summary>
/// I/O limits of one file: operations and bytes per second, total and per direction, and the
/// burst allowance (an idle file may spend up to that many seconds' worth at once). A value
/// left null in a change keeps the current one.
/// </summary>
internal sealed record ThrottleLimits
{
    public const double DefaultBurstSeconds = 1;

    /// <summary>Mount option and JSON names, by <see cref="LimitKind"/>.</summary>
    public static readonly string[] Names = ["iops", "iops_read", "iops_write", "bps", "bps_read", "bps_write"];

    public const string BurstName = "burst_seconds";

    /// <summary>Every limit off, default burst.</summary>
    public static readonly ThrottleLimits None = new() { Values = new long?[] { 0, 0, 0, 0, 0, 0 }, BurstSeconds = DefaultBurstSeconds };

    public long?[] Values { get; init; } = new long?[Names.Length];

    public double? BurstSeconds { get; init; }

    public bool IsEmpty => Values.All(v => v is null) && BurstSeconds is null;

    /// <summary>These changes applied on top of <paramref name="current"/>.</summary>
    public ThrottleLimits Over(ThrottleLimits current) => new()
    {
        Values = Values.Select((v, i) => v ?? current.Values[i]).ToArray(),
        BurstSeconds = BurstSeconds ?? current.BurstSeconds,
    };

    public long Get(LimitKind kind) => Values[(int)kind] ?? 0;

    /// <summary>Parses one -o option if it is a limit (iops=N, bps=8M, burst_seconds=2, ...); false if it is some other option.</summary>
    public static bool TryParseOption(string option, ref ThrottleLimits limits)
    {
        int eq = option.IndexOf('=');
        if (eq < 0)
        {
            return false;
        }

        string key = option[..eq];
        string value = option[(eq + 1)..];
        if (key == BurstName)
        {
            limits = limits with { BurstSeconds = ParseBurst(value, $"-o {option}") };
            return true;
        }

        int index = Array.IndexOf(Names, key);
        if (index < 0)
        {
            return false;
        }

        long?[] values = (long?[])limits.Values.Clone();
        values[index] = ParseLimit((LimitKind)index, value, $"-o {option}");
        limits = limits with { Values = values };
        return true;
    }

    /// <summary>A limit as users write it: operations as a plain count, bytes also with K/M/G suffixes; 0 removes it.</summary>
    public static long ParseLimit(LimitKind kind, string text, string where)
    {
        bool bytes = kind >= LimitKind.Bps;
        long? value = bytes ? ByteSize.TryParse(text) : long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : null;
        return value is >= 0
            ? value.Value
            : throw new UsageException($"{where}: give {(bytes ? "bytes per second (K/M/G suffixes allowed)" : "operations per second")}, or 0 for no limit");
    }

    public static double ParseBurst(string text, string where) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && double.IsFinite(s) && s > 0 && s <= 3600
            ? s
            : throw new UsageException($"{where}: give the burst allowance in seconds (more than 0, at most 3600)");

    /// <summary>As mount options, for handing to the daemon process.</summary>
    public IEnumerable<string> ToOptions()
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (Values[i] is { } v)
            {
                yield return $"{Names[i]}={v.ToString(CultureInfo.InvariantCulture)}";
            }
        }

        if (BurstSeconds is { } b)
        {
            yield return $"{BurstName}={b.ToString(CultureInfo.InvariantCulture)}";
        }
    }
}
