using System.Numerics;

namespace QedFuse.Cli.Live;

/// <summary>
/// Latencies in a fixed set of log-linear buckets (8 per power of two: at most 12.5% above the
/// true value), so recording is one atomic increment, memory is fixed (about 4 KiB) and
/// percentiles need no stored samples. The maximum is kept exactly.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBits = 3;
    private const int Sub = 1 << SubBits;
    private const int BucketCount = (63 - SubBits + 1) * Sub;

    private readonly long[] _counts = new long[BucketCount];
    private long _max;

    public long Max => Volatile.Read(ref _max);

    public void Record(long ns)
    {
        ns = Math.Max(0, ns);
        Interlocked.Increment(ref _counts[Index(ns)]);
        long seen = Volatile.Read(ref _max);
        while (ns > seen)
        {
            long was = Interlocked.CompareExchange(ref _max, ns, seen);
            if (was == seen)
            {
                break;
            }

            seen = was;
        }
    }

    /// <summary>The latency below which <paramref name="fraction"/> of the samples lie (bucket upper bound, capped at the maximum); 0 with no samples.</summary>
    public long Percentile(double fraction)
    {
        long total = 0;
        for (int i = 0; i < BucketCount; i++)
        {
            total += Volatile.Read(ref _counts[i]);
        }

        if (total == 0)
        {
            return 0;
        }

        long rank = Math.Max(1, (long)Math.Ceiling(fraction * total));
        long seen = 0;
        for (int i = 0; i < BucketCount; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Min(UpperBound(i), Max);
            }
        }

        return Max;
    }

    internal static int Index(long ns)
    {
        if (ns < Sub)
        {
            return (int)ns;
        }

        int exp = 63 - BitOperations.LeadingZeroCount((ulong)ns);
        int sub = (int)(ns >> (exp - SubBits)) & (Sub - 1);
        return (exp - SubBits + 1) * Sub + sub;
    }

    internal static long UpperBound(int index)
    {
        if (index < Sub)
        {
            return index;
        }

        int exp = index / Sub + SubBits - 1;
        int sub = index % Sub;
        long low = (long)(Sub + sub) << (exp - SubBits);
        return low + (1L << (exp - SubBits)) - 1;
    }
}
