using System.Diagnostics;

namespace QedFuse.Cli.Live;

/// <summary>One kind of request (read, write, flush, unmap): counts, bytes, failures, time, latency distribution.</summary>
internal sealed class OperationCounters
{
    public readonly LatencyHistogram Latency = new();
    private long _operations;
    private long _bytes;
    private long _failed;
    private long _totalNs;

    public long Operations => Volatile.Read(ref _operations);

    public long Bytes => Volatile.Read(ref _bytes);

    public long Failed => Volatile.Read(ref _failed);

    public long TotalNs => Volatile.Read(ref _totalNs);

    /// <summary>A request that succeeded; <paramref name="started"/> is its <see cref="Stopwatch.GetTimestamp"/> on arrival.</summary>
    public void Done(long bytes, long started)
    {
        if (!IoStatistics.Enabled)
        {
            return;
        }

        long ns = IoStatistics.NanosecondsSince(started);
        Interlocked.Increment(ref _operations);
        Interlocked.Add(ref _bytes, bytes);
        Interlocked.Add(ref _totalNs, ns);
        Latency.Record(ns);
    }

    /// <summary>A request that failed (QEMU counts these apart, without bytes or time).</summary>
    public void Fail() => Interlocked.Increment(ref _failed);
}

/// <summary>
/// What one exposed file has served since mount, kept as QEMU's block accounting keeps it
/// (query-blockstats). Always on: a request costs two clock reads and a few uncontended
/// atomic adds, next to a FUSE round trip of tens of microseconds.
/// </summary>
internal sealed class IoStatistics
{
    /// <summary>
    /// QEDFUSE_STATS=off turns the request counters off, only so that `make bench` can measure
    /// what they cost (system qedfuse-nostats). A static readonly field: the JIT folds it, so the
    /// normal build pays no test for it.
    /// </summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("QEDFUSE_STATS") != "off";

    private static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;
    private long _throttledOperations;
    private long _throttledNs;

    public OperationCounters Read { get; } = new();

    public OperationCounters Write { get; } = new();

    public OperationCounters Flush { get; } = new();

    public OperationCounters Unmap { get; } = new();

    public long ThrottledOperations => Volatile.Read(ref _throttledOperations);

    public long ThrottledNs => Volatile.Read(ref _throttledNs);

    /// <summary>A request that waited for an I/O limit from <paramref name="queued"/> until now.</summary>
    public void Throttled(long queued)
    {
        Interlocked.Increment(ref _throttledOperations);
        Interlocked.Add(ref _throttledNs, NanosecondsSince(queued));
    }

    /// <summary>A request's arrival time for <see cref="OperationCounters.Done"/>.</summary>
    public static long Timestamp() => Enabled ? Stopwatch.GetTimestamp() : 0;

    public static long NanosecondsSince(long timestamp) => (long)((Stopwatch.GetTimestamp() - timestamp) * NsPerTick);
}
