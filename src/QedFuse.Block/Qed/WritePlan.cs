namespace QedFuse.Block.Qed;

/// <summary>
/// What the write path does with the next piece of a request: write in place into allocated
/// clusters, or fill newly reserved clusters and then link them.
/// </summary>
internal readonly record struct WritePlan(
    long Offset,
    long Length,
    long HostOffset,
    bool Allocating,
    AllocationState PriorState = AllocationState.Data,
    long FirstCluster = 0,
    int Clusters = 0,
    L2Table? Table = null);
