using System.Buffers;

namespace QedFuse.Block.Tools;

/// <summary>
/// qemu-img rebase's safe mode: before the backing file changes, every range the image reads
/// from its old chain and whose bytes differ in the new chain is copied into the image, so
/// what the image shows does not change. Only the image is written; an interruption leaves
/// it showing the same content on its old backing file.
/// </summary>
public static class Rebaser
{
    private const int Chunk = 1 << 20;
    private const int Sector = 512;

    /// <summary>Copies the differences; <paramref name="newBacking"/> null means no backing file (zeros).</summary>
    public static void CopyDifferences(IBlockImage image, IBlockImage? newBacking, WorkProgress? progress, RateLimit rate, CancellationToken cancel)
    {
        if (progress is not null)
        {
            progress.Total = image.VirtualSize;
        }

        byte[] oldBuf = ArrayPool<byte>.Shared.Rent(Chunk);
        byte[] newBuf = ArrayPool<byte>.Shared.Rent(Chunk);
        try
        {
            for (long offset = 0; offset < image.VirtualSize;)
            {
                Allocation run = image.GetAllocation(offset, image.VirtualSize - offset);
                if (run.State == AllocationState.Unallocated)
                {
                    for (long at = offset; at < offset + run.Length;)
                    {
                        cancel.ThrowIfCancellationRequested();
                        int length = (int)Math.Min(Chunk - at % Chunk, offset + run.Length - at);
                        rate.Take(length, cancel);
                        if (!(KnownZero(image.Backing, at, length) && KnownZero(newBacking, at, length)))
                        {
                            CopyChunk(image, newBacking, at, oldBuf.AsSpan(0, length), newBuf.AsSpan(0, length));
                        }

                        at += length;
                        progress?.Add(length);
                    }
                }
                else
                {
                    progress?.Add(run.Length);
                }

                offset += run.Length;
            }

            image.Flush();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(oldBuf);
            ArrayPool<byte>.Shared.Return(newBuf);
        }
    }

    /// <summary>Whether the chain (null: none) says the range reads as zeros, without reading it.</summary>
    private static bool KnownZero(IBlockImage? chain, long offset, long length) =>
        chain is null || ChainMap.Walk(chain, offset, length).All(r => !r.Data);

    /// <summary>Writes the sectors of one chunk where the old chain and the new one differ, as the old chain shows them.</summary>
    private static void CopyChunk(IBlockImage image, IBlockImage? newBacking, long offset, Span<byte> old, Span<byte> fresh)
    {
        BackingChain.Read(image.Backing, offset, old);
        BackingChain.Read(newBacking, offset, fresh);
        int at = 0;
        while (at < old.Length)
        {
            int same = old[at..].CommonPrefixLength(fresh[at..]) / Sector * Sector;
            at += same;
            if (at >= old.Length)
            {
                break;
            }

            // A run of differing sectors: up to the first sector that is equal again.
            int end = at;
            while (end < old.Length)
            {
                int n = Math.Min(Sector, old.Length - end);
                if (end > at && old.Slice(end, n).SequenceEqual(fresh.Slice(end, n)))
                {
                    break;
                }

                end += n;
            }

            ReadOnlySpan<byte> piece = old[at..end];
            if (piece.IndexOfAnyExcept((byte)0) < 0)
            {
                image.WriteZeroes(offset + at, piece.Length, unmap: false);
            }
            else
            {
                image.Write(offset + at, piece);
            }

            at = end;
        }
    }
}
