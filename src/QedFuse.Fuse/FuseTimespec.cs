namespace QedFuse.Fuse;

/// <summary>A POSIX timestamp (seconds and nanoseconds since the Unix epoch).</summary>
public readonly record struct FuseTimespec(long Seconds, long Nanoseconds)
{
    public static FuseTimespec FromDateTimeOffset(DateTimeOffset time)
    {
        long ticks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return new FuseTimespec(Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rem) - (rem < 0 ? 1 : 0),
            (rem < 0 ? rem + TimeSpan.TicksPerSecond : rem) * 100);
    }

    public DateTimeOffset ToDateTimeOffset() =>
        DateTimeOffset.UnixEpoch.AddTicks(Seconds * TimeSpan.TicksPerSecond + Nanoseconds / 100);
}
