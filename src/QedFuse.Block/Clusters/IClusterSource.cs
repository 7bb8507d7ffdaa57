namespace QedFuse.Block.Clusters;

/// <summary>
/// What a format gives the format-neutral request loop: the run at an offset, and the bytes of
/// a compressed cluster. A format without compression never returns <see cref="RunKind.Compressed"/>.
/// </summary>
internal interface IClusterSource
{
    /// <summary>The run that starts at <paramref name="offset"/>, at most <paramref name="length"/> long (at least one byte).</summary>
    ClusterRun Map(long offset, long length);

    /// <summary>Fills <paramref name="destination"/> from the compressed cluster <paramref name="entry"/>, starting <paramref name="offsetInCluster"/> bytes in.</summary>
    void ReadCompressed(ulong entry, long offsetInCluster, Span<byte> destination);
}
