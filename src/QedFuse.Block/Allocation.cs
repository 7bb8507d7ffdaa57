namespace QedFuse.Block;

/// <summary>Where the bytes of a run of the virtual disk come from.</summary>
public enum AllocationState
{
    /// <summary>Stored in this layer, at <see cref="Allocation.HostOffset"/> of the image file.</summary>
    Data,

    /// <summary>Reads as zeros without consulting the backing chain.</summary>
    Zero,

    /// <summary>Not stored in this layer: read the backing image, or zeros if there is none.</summary>
    Unallocated,
}

/// <summary>A run of the virtual disk in one <see cref="AllocationState"/>; for data runs the host bytes are contiguous.</summary>
public readonly record struct Allocation(AllocationState State, long Length, long HostOffset = -1);
