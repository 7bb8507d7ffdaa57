using System.Diagnostics;

namespace QedFuse.Block.Tools;

/// <summary>
/// qemu-img's -r: at most so many bytes per second, averaged from the start. A caller takes
/// its bytes before moving them and waits (cancellably) until they are due.
/// </summary>
public sealed class RateLimit
{
    private readonly long _bytesPerSecond;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _granted;

    /// <param name="bytesPerSecond">0 or less: no limit.</param>
    public RateLimit(long bytesPerSecond)
    {
        _bytesPerSecond = bytesPerSecond;
    }

    public static RateLimit None { get; } = new(0);

    public void Take(long bytes, CancellationToken cancel)
    {
        if (_bytesPerSecond <= 0)
        {
            return;
        }

        long before = Interlocked.Add(ref _granted, bytes) - bytes;
        TimeSpan due = TimeSpan.FromSeconds((double)before / _bytesPerSecond);
        TimeSpan wait = due - _clock.Elapsed;
        if (wait > TimeSpan.Zero)
        {
            cancel.WaitHandle.WaitOne(wait);
        }

        cancel.ThrowIfCancellationRequested();
    }
}
