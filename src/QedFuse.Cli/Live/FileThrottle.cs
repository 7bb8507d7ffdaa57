using System.Diagnostics;
using QedFuse.Fuse;

namespace QedFuse.Cli.Live;

/// <summary>
/// QEMU-style I/O limits for one exposed file: leaky buckets (one per limit) that drain at the
/// limit's rate. A request is admitted when every bucket it counts against is at most its burst
/// allowance full (rate x burst seconds), and then adds its units, so a request larger than the
/// whole budget still goes through and only later ones wait. Requests that must wait queue in
/// arrival order per direction, off the FUSE workers (<see cref="FuseDeferredRequest"/>), and a
/// timer releases them onto the thread pool as the buckets drain: a throttled file never
/// occupies the threads that serve the other files.
/// </summary>
internal sealed class FileThrottle : IDisposable
{
    private static readonly double SecondsPerTick = 1.0 / Stopwatch.Frequency;

    // Which buckets a read (0) and a write (1) count against: operations, then bytes.
    private static readonly LimitKind[][] OpsBuckets = [[LimitKind.Iops, LimitKind.IopsRead], [LimitKind.Iops, LimitKind.IopsWrite]];
    private static readonly LimitKind[][] ByteBuckets = [[LimitKind.Bps, LimitKind.BpsRead], [LimitKind.Bps, LimitKind.BpsWrite]];

    private readonly object _lock = new();
    private readonly double[] _rate = new double[ThrottleLimits.Names.Length];
    private readonly double[] _level = new double[ThrottleLimits.Names.Length];
    private readonly Queue<(FuseDeferredRequest Request, long Queued)>[] _queues = [new(), new()];
    private readonly IoStatistics _stats;
    private readonly Timer _timer;
    private ThrottleLimits _limits = ThrottleLimits.None;
    private double _burstSeconds = ThrottleLimits.DefaultBurstSeconds;
    private long _lastLeak = Stopwatch.GetTimestamp();
    private volatile bool _active;
    private bool _closed;

    public FileThrottle(IoStatistics stats)
    {
        _stats = stats;
        _timer = new Timer(_ => Release());
    }

    /// <summary>The limits in force (every value set; 0 = none).</summary>
    public ThrottleLimits Limits
    {
        get
        {
            lock (_lock)
            {
                return _limits;
            }
        }
    }

    /// <summary>Applies changes at once: waiting requests are re-timed against the new limits.</summary>
    public void Configure(ThrottleLimits changes)
    {
        lock (_lock)
        {
            LeakLocked();
            _limits = changes.Over(_limits);
            _burstSeconds = _limits.BurstSeconds ?? ThrottleLimits.DefaultBurstSeconds;
            // As QEMU does on a new configuration: every bucket starts empty, so a changed limit
            // is not held back by what the old one accumulated.
            for (int i = 0; i < _rate.Length; i++)
            {
                _rate[i] = _limits.Get((LimitKind)i);
                _level[i] = 0;
            }

            _active = !_closed && _rate.Any(r => r > 0);
        }

        Release();
    }

    /// <summary>On the FUSE worker, for every read and write of the file: true = serve it now.</summary>
    public bool Admit(bool write, int bytes, in FuseRequestHandoff request)
    {
        if (!_active)
        {
            return true; // the common case: no limits, no lock
        }

        int d = write ? 1 : 0;
        lock (_lock)
        {
            if (!_active)
            {
                return true;
            }

            LeakLocked();
            if (_queues[d].Count == 0 && WaitLocked(d) == 0)
            {
                TakeLocked(d, bytes);
                return true;
            }

            _queues[d].Enqueue((request.Defer(), Stopwatch.GetTimestamp()));
            ScheduleLocked();
            return false;
        }
    }

    /// <summary>At unmount: no more waiting; whatever is queued runs now (replies to a closed connection fail harmlessly).</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            _active = false;
        }

        Release();
    }

    public void Dispose()
    {
        Close();
        _timer.Dispose();
    }

    /// <summary>Starts every queued request whose turn has come, and re-arms the timer for the next.</summary>
    private void Release()
    {
        List<(FuseDeferredRequest Request, long Queued)>? ready = null;
        lock (_lock)
        {
            LeakLocked();
            bool progress = true;
            while (progress)
            {
                progress = false;
                for (int d = 0; d < 2; d++)
                {
                    // Alternate directions so neither starves the other, as QEMU does.
                    if (_queues[d].Count > 0 && (!_active || WaitLocked(d) == 0))
                    {
                        var item = _queues[d].Dequeue();
                        TakeLocked(d, item.Request.Size);
                        (ready ??= []).Add(item);
                        progress = true;
                    }
                }
            }

            ScheduleLocked();
        }

        if (ready is null)
        {
            return;
        }

        foreach (var (request, queued) in ready)
        {
            _stats.Throttled(queued);
            ThreadPool.UnsafeQueueUserWorkItem(static r => r.Run(), request, preferLocal: false);
        }
    }

    private void LeakLocked()
    {
        long now = Stopwatch.GetTimestamp();
        double seconds = (now - _lastLeak) * SecondsPerTick;
        _lastLeak = now;
        for (int i = 0; i < _level.Length; i++)
        {
            _level[i] = Math.Max(0, _level[i] - _rate[i] * seconds);
        }
    }

    /// <summary>Seconds until a request in direction <paramref name="d"/> may start (0 = now).</summary>
    private double WaitLocked(int d)
    {
        double wait = 0;
        for (int n = 0; n < 4; n++)
        {
            int i = (int)(n < 2 ? OpsBuckets[d][n] : ByteBuckets[d][n - 2]);
            double rate = _rate[i];
            if (rate > 0)
            {
                double extra = _level[i] - rate * _burstSeconds;
                if (extra > 0)
                {
                    wait = Math.Max(wait, extra / rate);
                }
            }
        }

        return wait;
    }

    private void TakeLocked(int d, int bytes)
    {
        foreach (LimitKind k in OpsBuckets[d])
        {
            _level[(int)k] += _rate[(int)k] > 0 ? 1 : 0;
        }

        foreach (LimitKind k in ByteBuckets[d])
        {
            _level[(int)k] += _rate[(int)k] > 0 ? bytes : 0;
        }
    }

    private void ScheduleLocked()
    {
        if (_closed)
        {
            return; // nothing waits any more, and the timer may be disposed
        }

        double next = double.PositiveInfinity;
        for (int d = 0; d < 2; d++)
        {
            if (_queues[d].Count > 0)
            {
                next = Math.Min(next, WaitLocked(d));
            }
        }

        if (double.IsPositiveInfinity(next))
        {
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
        }
        else
        {
            _timer.Change(TimeSpan.FromMilliseconds(Math.Max(1, Math.Ceiling(next * 1000))), Timeout.InfiniteTimeSpan);
        }
    }
}
