using System.Buffers;

namespace QedFuse.Block.Clusters;

/// <summary>
/// The write half of the request loop: each piece is written in place, or into freshly
/// reserved clusters whose untouched head and tail are filled from the plan's copy source
/// (backing chain, zeros, the shared cluster, the decompressed cluster) before the format
/// links them. Every byte of a linked cluster is written unless fresh clusters are known to
/// read as zeros and the source is zeros.
/// </summary>
internal static class ClusterWriter
{
    private const int CopyChunk = 1 << 20;

    public static void Write(IClusterWriteMap map, HostFile file, IBlockImage? backing, int clusterBits, long offset, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            WritePlan plan = map.PlanWrite(offset, data.Length);
            if (plan.Length <= 0 || plan.Length > data.Length)
            {
                throw new InvalidOperationException($"{file.Path}: write plan of {plan.Length} bytes at {offset}");
            }

            ReadOnlySpan<byte> part = data[..(int)plan.Length];
            if (plan.Allocating)
            {
                WriteAllocating(map, file, backing, clusterBits, plan, part);
            }
            else
            {
                try
                {
                    file.Write(plan.HostOffset, part, IoEvent.DataWrite);
                }
                finally
                {
                    map.EndInPlace(plan);
                }
            }

            offset += plan.Length;
            data = data[(int)plan.Length..];
        }
    }

    private static void WriteAllocating(IClusterWriteMap map, HostFile file, IBlockImage? backing, int clusterBits, in WritePlan plan, ReadOnlySpan<byte> data)
    {
        try
        {
            long clusterStart = plan.FirstCluster << clusterBits;
            long head = plan.Offset - clusterStart;
            long tail = clusterStart + ((long)plan.Clusters << clusterBits) - (plan.Offset + plan.Length);
            Fill(map, file, backing, clusterBits, plan, clusterStart, head, plan.HostOffset);
            Fill(map, file, backing, clusterBits, plan, plan.Offset + plan.Length, tail, plan.HostOffset + head + plan.Length);
            file.Write(plan.HostOffset + head, data, IoEvent.DataWrite);
        }
        catch
        {
            map.Abort(plan);
            throw;
        }

        map.Commit(plan);
    }

    /// <summary>Fills [virtualOffset, +length) of the new clusters (at <paramref name="hostOffset"/>) from the plan's source.</summary>
    private static void Fill(IClusterWriteMap map, HostFile file, IBlockImage? backing, int clusterBits, in WritePlan plan,
        long virtualOffset, long length, long hostOffset)
    {
        // The backing chain of an image without a backing file is zeros.
        CopySource source = plan.Source == CopySource.Backing && backing is null ? CopySource.Zeros : plan.Source;
        if (length == 0 || (source == CopySource.Zeros && map.FreshClustersReadAsZeros))
        {
            return;
        }

        if (source == CopySource.Zeros)
        {
            file.ZeroRange(hostOffset, length, release: false);
            return;
        }

        file.Announce(IoEvent.CowRead);
        byte[] buf = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, CopyChunk));
        try
        {
            for (long done = 0; done < length;)
            {
                Span<byte> part = buf.AsSpan(0, (int)Math.Min(buf.Length, length - done));
                long inCluster = (virtualOffset + done) & ((1L << clusterBits) - 1);
                switch (source)
                {
                    case CopySource.Backing:
                        BackingChain.Read(backing, virtualOffset + done, part);
                        break;
                    case CopySource.HostCluster:
                        file.ReadExactly(plan.SourceHostOffset + inCluster, part);
                        break;
                    default:
                        map.ReadCompressed(plan.SourceEntry, inCluster, part);
                        break;
                }

                file.Write(hostOffset + done, part, IoEvent.DataWrite);
                done += part.Length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }
}
