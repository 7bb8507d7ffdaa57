namespace QedFuse.Block;

/// <summary>
/// One range of the virtual disk as the whole backing chain resolves it, with qemu-img map's
/// attributes: which layer holds it (depth), whether reads are known zeros, whether it is data
/// stored in a file and where.
/// </summary>
/// <remarks>A data range with no host offset of its own (compressed clusters) has <see cref="HostOffset"/> -1.</remarks>
public readonly record struct MapRange(long Start, long Length, int Depth, bool Present, bool Zero, bool Data, long HostOffset, string? File);

/// <summary>Resolves allocation through a backing chain: what qemu-img map prints and what SEEK_DATA/SEEK_HOLE answer.</summary>
public static class ChainMap
{
    /// <summary>The ranges covering [offset, offset+length), adjacent equal ranges merged.</summary>
    public static IEnumerable<MapRange> Walk(IBlockImage top, long offset, long length)
    {
        MapRange? pending = null;
        foreach (MapRange r in WalkLayer(top, offset, length, 0))
        {
            if (pending is { } p && Mergeable(p, r))
            {
                pending = p with { Length = p.Length + r.Length };
                continue;
            }

            if (pending is { } done)
            {
                yield return done;
            }

            pending = r;
        }

        if (pending is { } last)
        {
            yield return last;
        }
    }

    /// <summary>The first offset at or after <paramref name="offset"/> whose bytes are stored data, or -1.</summary>
    public static long NextData(IBlockImage top, long offset) => NextWhere(top, offset, data: true);

    /// <summary>The first offset at or after <paramref name="offset"/> that reads as known zeros (a hole), or the virtual size.</summary>
    public static long NextHole(IBlockImage top, long offset)
    {
        long hole = NextWhere(top, offset, data: false);
        return hole < 0 ? top.VirtualSize : hole;
    }

    private static long NextWhere(IBlockImage top, long offset, bool data)
    {
        foreach (MapRange r in WalkLayer(top, offset, top.VirtualSize - offset, 0))
        {
            if (r.Data == data)
            {
                return r.Start;
            }
        }

        return -1;
    }

    private static IEnumerable<MapRange> WalkLayer(IBlockImage image, long offset, long length, int depth)
    {
        long end = offset + length;
        while (offset < end)
        {
            long inImage = Math.Min(end, image.VirtualSize) - offset;
            if (inImage <= 0)
            {
                // Past the end of a smaller backing file: zeros nobody stores.
                yield return new MapRange(offset, end - offset, depth, false, true, false, -1, null);
                yield break;
            }

            Allocation a = image.GetAllocation(offset, inImage);
            switch (a.State)
            {
                case AllocationState.Data:
                    yield return new MapRange(offset, a.Length, depth, true, false, true, a.HostOffset, image.Path);
                    break;
                case AllocationState.Zero:
                    yield return new MapRange(offset, a.Length, depth, true, true, false, -1, null);
                    break;
                default:
                    if (image.Backing is { } backing)
                    {
                        foreach (MapRange r in WalkLayer(backing, offset, a.Length, depth + 1))
                        {
                            yield return r;
                        }
                    }
                    else
                    {
                        yield return new MapRange(offset, a.Length, depth, false, true, false, -1, null);
                    }

                    break;
            }

            offset += a.Length;
        }
    }

    private static bool Mergeable(MapRange a, MapRange b) =>
        a.Start + a.Length == b.Start && a.Depth == b.Depth && a.Present == b.Present && a.Zero == b.Zero && a.Data == b.Data
        && a.File == b.File && (!a.Data || a.HostOffset + a.Length == b.HostOffset || (a.HostOffset < 0 && b.HostOffset < 0));
}
