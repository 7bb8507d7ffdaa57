namespace QedFuse.Block.Clusters;

/// <summary>Where the bytes of a newly linked cluster that the write does not cover come from.</summary>
internal enum CopySource
{
    /// <summary>Zeros (a zero cluster, or unallocated with no backing file).</summary>
    Zeros,

    /// <summary>The backing chain at the same virtual offset (zeros past its end).</summary>
    Backing,

    /// <summary>The cluster's previous host cluster (shared with a snapshot): <see cref="WritePlan.SourceHostOffset"/>.</summary>
    HostCluster,

    /// <summary>The cluster's previous compressed data: <see cref="WritePlan.SourceEntry"/>.</summary>
    Compressed,
}

/// <summary>
/// What the request loop does with the next piece of a write: write in place into linked
/// clusters, or fill clusters reserved for this request alone (the part the write does not
/// cover from <see cref="Source"/>) and then have the format link them (commit), or give them
/// back (abort).
/// </summary>
internal readonly record struct WritePlan(
    long Offset,
    long Length,
    long HostOffset,
    bool Allocating,
    CopySource Source = CopySource.Zeros,
    long FirstCluster = 0,
    int Clusters = 0,
    long SourceHostOffset = 0,
    ulong SourceEntry = 0,
    object? Token = null,
    long Ticket = -1);
