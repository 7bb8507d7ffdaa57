namespace QedFuse.Block.Clusters;

/// <summary>What a writable format gives the request loop, on top of reads.</summary>
internal interface IClusterWriteMap : IClusterSource
{
    /// <summary>
    /// Whether clusters handed out by <see cref="PlanWrite"/> read as zeros until written
    /// (QED appends past the end of the file: yes; qcow2 reuses freed clusters: no). When
    /// not, the request loop writes every byte of a cluster it links.
    /// </summary>
    bool FreshClustersReadAsZeros { get; }

    /// <summary>Plans the next piece of a write at <paramref name="offset"/>, at most <paramref name="length"/> long.</summary>
    WritePlan PlanWrite(long offset, long length);

    /// <summary>An in-place write planned by <see cref="PlanWrite"/> is over.</summary>
    void EndInPlace(in WritePlan plan);

    /// <summary>Links the clusters of a finished allocating write.</summary>
    void Commit(in WritePlan plan);

    /// <summary>Gives back the clusters of an allocating write whose data write failed.</summary>
    void Abort(in WritePlan plan);
}
