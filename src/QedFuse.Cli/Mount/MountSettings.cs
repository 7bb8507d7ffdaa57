namespace QedFuse.Cli.Mount;

/// <summary>A validated mount request, with absolute paths (the daemon may run elsewhere).</summary>
internal sealed record MountSettings(
    IReadOnlyList<string> Images,
    string MountPoint,
    bool ReadOnly,
    bool AllowOther,
    bool ForceShare,
    TimeSpan FlushInterval,
    long CacheBytes,
    int Threads,
    Live.ThrottleLimits Limits);
