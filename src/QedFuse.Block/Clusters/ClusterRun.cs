namespace QedFuse.Block.Clusters;

/// <summary>Where the bytes of a run come from, as the request loop sees them.</summary>
internal enum RunKind
{
    /// <summary>Contiguous host bytes at <see cref="ClusterRun.HostOffset"/>.</summary>
    Data,

    /// <summary>Reads as zeros; nothing to read.</summary>
    Zero,

    /// <summary>Not in this layer: the backing chain, or zeros.</summary>
    Unallocated,

    /// <summary>Part of one compressed cluster; <see cref="ClusterRun.Entry"/> is the format's descriptor.</summary>
    Compressed,
}

/// <summary>A run of the virtual disk in one <see cref="RunKind"/>, as a format's cluster map returns it.</summary>
internal readonly record struct ClusterRun(RunKind Kind, long Length, long HostOffset = -1, ulong Entry = 0, long Ticket = -1)
{
    /// <summary>The run as the driver interface reports it: compressed data is data with no host offset of its own.</summary>
    public Allocation ToAllocation() => Kind switch
    {
        RunKind.Data => new Allocation(AllocationState.Data, Length, HostOffset),
        RunKind.Compressed => new Allocation(AllocationState.Data, Length),
        RunKind.Zero => new Allocation(AllocationState.Zero, Length),
        _ => new Allocation(AllocationState.Unallocated, Length),
    };
}
