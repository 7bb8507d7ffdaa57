using QedFuse.Block;
using QedFuse.Block.Tools;

namespace QedFuse.Cli.Output;

/// <summary>What every long verb needs: progress (-p, SIGUSR1) and a cancellation on Ctrl-C/SIGTERM.</summary>
internal sealed class LongRun : IDisposable
{
    private readonly Interruption? _interruption;
    private readonly ProgressMeter _meter;

    /// <param name="interruptible">
    /// Whether the work watches <see cref="Token"/>; work that does not (check) leaves Ctrl-C its
    /// default effect instead of swallowing it.
    /// </param>
    public LongRun(bool showProgress, bool interruptible = true)
    {
        _interruption = interruptible ? new Interruption() : null;
        _meter = new ProgressMeter(Progress, showProgress);
    }

    public WorkProgress Progress { get; } = new();

    public CancellationToken Token => _interruption?.Token ?? CancellationToken.None;

    /// <summary>Parses a -r RATE_LIMIT argument (null: no limit).</summary>
    public static RateLimit Rate(string? text) =>
        text is null ? RateLimit.None
        : Block.ByteSize.TryParse(text) is { } n && n > 0 ? new RateLimit(n)
        : throw new UsageException($"invalid rate limit '{text}': give bytes per second, or a number with a K, M or G suffix");

    /// <summary>Shows 100% and ends the progress line (call once the work succeeded).</summary>
    public void Finish() => _meter.Finish();

    public void Dispose()
    {
        _meter.Dispose();
        _interruption?.Dispose();
    }
}
