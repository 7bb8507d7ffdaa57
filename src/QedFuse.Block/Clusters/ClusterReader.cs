namespace QedFuse.Block.Clusters;

/// <summary>
/// The read half of the request loop: a request is walked as runs, each served by one host
/// read, a fill with zeros, a read through the backing chain (zeros past a smaller backing
/// file), or a decompression.
/// </summary>
internal static class ClusterReader
{
    public static void Read(IClusterSource source, HostFile file, IBlockImage? backing, long clusterSize, long offset, Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            ClusterRun run = source.MapForRead(offset, buffer.Length);
            if (run.Length <= 0 || run.Length > buffer.Length)
            {
                throw new InvalidOperationException($"{file.Path}: cluster map returned a run of {run.Length} bytes at {offset}");
            }

            Span<byte> part = buffer[..(int)run.Length];
            try
            {
                switch (run.Kind)
                {
                    case RunKind.Data:
                        file.ReadExactly(run.HostOffset, part);
                        break;
                    case RunKind.Zero:
                        part.Clear();
                        break;
                    case RunKind.Compressed:
                        source.ReadCompressed(run.Entry, offset & (clusterSize - 1), part);
                        break;
                    default:
                        BackingChain.Read(backing, offset, part);
                        break;
                }
            }
            finally
            {
                source.EndRead(run);
            }

            offset += run.Length;
            buffer = buffer[(int)run.Length..];
        }
    }
}
