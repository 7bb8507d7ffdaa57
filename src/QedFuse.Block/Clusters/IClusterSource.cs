namespace QedFuse.Block.Clusters;

/// <summary>
/// What a format gives the format-neutral request loop: the run at an offset, and the bytes of
/// a compressed cluster. A format without compression never returns <see cref="RunKind.Compressed"/>.
/// </summary>
internal interface IClusterSource
{
    /// <summary>The run that starts at <paramref name="offset"/>, at most <paramref name="length"/> long (at least one byte).</summary>
    ClusterRun Map(long offset, long length);

    /// <summary>As <see cref="Map"/>, for a read about to use the run's host offset; <see cref="EndRead"/> follows it.</summary>
    ClusterRun MapForRead(long offset, long length);

    /// <summary>The read of a run from <see cref="MapForRead"/> is over: clusters freed meanwhile may be reused.</summary>
    void EndRead(in ClusterRun run);

    /// <summary>Fills <paramref name="destination"/> from the compressed cluster <paramref name="entry"/>, starting <paramref name="offsetInCluster"/> bytes in.</summary>
    void ReadCompressed(ulong entry, long offsetInCluster, Span<byte> destination);
}
