using System.Buffers;

namespace QedFuse.Block.Tools;

/// <summary>What qemu-img compare found.</summary>
public enum CompareVerdict
{
    Identical,

    /// <summary>Content differs at <see cref="CompareOutcome.Offset"/> (the first differing 512-byte sector).</summary>
    ContentMismatch,

    /// <summary>Strict mode: the virtual sizes differ.</summary>
    SizeMismatch,

    /// <summary>Strict mode: one image stores the range at <see cref="CompareOutcome.Offset"/>, the other does not.</summary>
    StatusMismatch,
}

/// <param name="SizesDiffer">Non-strict mode got past the common size (qemu-img then warns "Image size mismatch").</param>
public readonly record struct CompareOutcome(CompareVerdict Verdict, long Offset, bool SizesDiffer);

/// <summary>
/// qemu-img compare's semantics: ranges both chains know to be zeros are equal without
/// reading; otherwise the bytes decide, sector by sector. Past the smaller image, the larger
/// one must read as zeros. Strict mode also wants equal sizes and equal allocation (a range
/// provided by some layer of one chain must be provided by some layer of the other).
/// </summary>
public static class ImageComparer
{
    private const int Chunk = 1 << 20;
    private const int Sector = 512;

    public static CompareOutcome Compare(IBlockImage a, IBlockImage b, bool strict, WorkProgress? progress, CancellationToken cancel)
    {
        if (strict && a.VirtualSize != b.VirtualSize)
        {
            return new CompareOutcome(CompareVerdict.SizeMismatch, 0, true);
        }

        long common = Math.Min(a.VirtualSize, b.VirtualSize);
        IBlockImage larger = a.VirtualSize >= b.VirtualSize ? a : b;
        if (progress is not null)
        {
            progress.Total = larger.VirtualSize;
        }

        byte[] bufA = ArrayPool<byte>.Shared.Rent(Chunk);
        byte[] bufB = ArrayPool<byte>.Shared.Rent(Chunk);
        try
        {
            using var walkA = ChainMap.Walk(a, 0, common).GetEnumerator();
            using var walkB = ChainMap.Walk(b, 0, common).GetEnumerator();
            MapRange ra = default, rb = default;
            for (long at = 0; at < common;)
            {
                cancel.ThrowIfCancellationRequested();
                ra = Current(walkA, ra, at);
                rb = Current(walkB, rb, at);
                int length = (int)Math.Min(Chunk, Math.Min(ra.Start + ra.Length, rb.Start + rb.Length) - at);
                if (strict && ra.Present != rb.Present)
                {
                    return new CompareOutcome(CompareVerdict.StatusMismatch, at, false);
                }

                if (!(ra.Zero && rb.Zero))
                {
                    Span<byte> x = bufA.AsSpan(0, length), y = bufB.AsSpan(0, length);
                    ReadOrZero(a, ra, at, x);
                    ReadOrZero(b, rb, at, y);
                    int diff = x.CommonPrefixLength(y);
                    if (diff < length)
                    {
                        return new CompareOutcome(CompareVerdict.ContentMismatch, at + diff / Sector * Sector, false);
                    }
                }

                at += length;
                progress?.Add(length);
            }

            bool sizesDiffer = a.VirtualSize != b.VirtualSize;
            foreach (MapRange r in ChainMap.Walk(larger, common, larger.VirtualSize - common))
            {
                for (long at = r.Start; at < r.Start + r.Length && !r.Zero;)
                {
                    cancel.ThrowIfCancellationRequested();
                    int length = (int)Math.Min(Chunk, r.Start + r.Length - at);
                    Span<byte> x = bufA.AsSpan(0, length);
                    larger.Read(at, x);
                    int nonzero = x.IndexOfAnyExcept((byte)0);
                    if (nonzero >= 0)
                    {
                        return new CompareOutcome(CompareVerdict.ContentMismatch, at + nonzero / Sector * Sector, sizesDiffer);
                    }

                    at += length;
                }

                progress?.Add(r.Length);
            }

            return new CompareOutcome(CompareVerdict.Identical, 0, sizesDiffer);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bufA);
            ArrayPool<byte>.Shared.Return(bufB);
        }
    }

    /// <summary>The range covering <paramref name="at"/>: the one held, or the next from the walk.</summary>
    private static MapRange Current(IEnumerator<MapRange> walk, MapRange held, long at)
    {
        while (held.Start + held.Length <= at)
        {
            if (!walk.MoveNext())
            {
                throw new InvalidOperationException("allocation walk ended before the virtual size");
            }

            held = walk.Current;
        }

        return held;
    }

    private static void ReadOrZero(IBlockImage image, MapRange r, long at, Span<byte> buffer)
    {
        if (r.Zero)
        {
            buffer.Clear();
        }
        else
        {
            image.Read(at, buffer);
        }
    }
}
