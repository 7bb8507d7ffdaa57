using System.Numerics;

namespace QedFuse.Block;

/// <summary>
/// A set of non-negative cluster numbers stored as 4096-bit pages allocated on first use:
/// memory follows what is in the set, not the largest number (a hostile sparse file can
/// claim 2^50 clusters). Not thread-safe.
/// </summary>
internal sealed class SparseBitSet
{
    private const int PageBits = 12;
    private const int WordsPerPage = (1 << PageBits) / 64;
    private readonly Dictionary<long, ulong[]> _pages = [];

    public long Count { get; private set; }

    /// <summary>The largest member, or -1 when empty.</summary>
    public long Max { get; private set; } = -1;

    /// <summary>Adds <paramref name="n"/>; false when it was already there.</summary>
    public bool Add(long n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (!_pages.TryGetValue(n >> PageBits, out ulong[]? page))
        {
            page = new ulong[WordsPerPage];
            _pages.Add(n >> PageBits, page);
        }

        ref ulong word = ref page[(n >> 6) & (WordsPerPage - 1)];
        ulong bit = 1UL << (int)(n & 63);
        if ((word & bit) != 0)
        {
            return false;
        }

        word |= bit;
        Count++;
        Max = Math.Max(Max, n);
        return true;
    }

    public bool Contains(long n) =>
        n >= 0 && _pages.TryGetValue(n >> PageBits, out ulong[]? page) && (page[(n >> 6) & (WordsPerPage - 1)] & (1UL << (int)(n & 63))) != 0;

    /// <summary>Members in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public long CountInRange(long from, long to)
    {
        long count = 0;
        foreach (var (key, page) in _pages)
        {
            long pageFirst = key << PageBits;
            if (pageFirst + (1L << PageBits) <= from || pageFirst >= to)
            {
                continue;
            }

            for (int w = 0; w < WordsPerPage; w++)
            {
                ulong word = page[w];
                for (; word != 0; word &= word - 1)
                {
                    long n = pageFirst + w * 64 + BitOperations.TrailingZeroCount(word);
                    count += n >= from && n < to ? 1 : 0;
                }
            }
        }

        return count;
    }
}
