namespace QedFuse.Block.Tools;

/// <summary>A run of the virtual disk to copy: read from the source, or known (from its allocation) to read as zeros there.</summary>
public readonly record struct CopyRange(long Start, long Length, bool KnownZero)
{
    /// <summary>
    /// The source's whole chain as copy ranges: stored data is read, known zeros (holes, zero
    /// clusters, unallocated) are not. Neighbouring data runs merge whatever layer or host
    /// offset they come from, so a fragmented source still copies in large requests.
    /// </summary>
    public static IEnumerable<CopyRange> FromAllocation(IBlockImage source)
    {
        CopyRange? pending = null;
        foreach (MapRange r in ChainMap.Walk(source, 0, source.VirtualSize))
        {
            var next = new CopyRange(r.Start, r.Length, !r.Data);
            if (pending is { } p && p.KnownZero == next.KnownZero)
            {
                pending = p with { Length = p.Length + next.Length };
                continue;
            }

            if (pending is { } done)
            {
                yield return done;
            }

            pending = next;
        }

        if (pending is { } last)
        {
            yield return last;
        }
    }
}

/// <summary>How <see cref="ImageCopier"/> copies.</summary>
public sealed record CopySettings
{
    /// <summary>Requests in flight (qemu-img convert -m).</summary>
    public int Parallelism { get; init; } = 8;

    /// <summary>Let writes land out of order (qemu-img convert -W); otherwise they reach the target in offset order.</summary>
    public bool OutOfOrder { get; init; }

    /// <summary>Aligned runs of this many zero bytes are not written (qemu-img convert -S); 0 writes everything, zeros included.</summary>
    public long SparseSize { get; init; } = 4096;

    /// <summary>The target reads as zeros wherever nothing is written (a fresh image without a backing file).</summary>
    public bool TargetReadsZero { get; init; }

    /// <summary>
    /// Write only where the source differs from this image (the target's backing chain, for
    /// convert -B); null compares with zeros.
    /// </summary>
    public IBlockImage? Baseline { get; init; }

    public WorkProgress? Progress { get; init; }

    /// <summary>Bytes per second, read or known-zero alike (qemu-img -r).</summary>
    public RateLimit Rate { get; init; } = RateLimit.None;
}
