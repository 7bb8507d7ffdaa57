namespace QedFuse.Block;

/// <summary>What a consistency check may repair, as qemu-img check's <c>-r</c>.</summary>
public enum CheckRepair
{
    None,
    Leaks,
    All,
}

/// <summary>The outcome of a consistency check, with qemu-img check's counters.</summary>
public sealed record CheckResult
{
    public required string Filename { get; init; }
    public required string Format { get; init; }

    /// <summary>False for formats that cannot be checked (qemu-img exit 63).</summary>
    public bool Supported { get; init; } = true;

    public long TotalClusters { get; init; }
    public long AllocatedClusters { get; init; }
    public long Corruptions { get; init; }
    public long Leaks { get; init; }
    public long CorruptionsFixed { get; init; }
    public long LeaksFixed { get; init; }
    public long CheckErrors { get; init; }
    public long ImageEndOffset { get; init; }

    /// <summary>qemu-img's fragmentation figures, for formats that report them (qcow2); null otherwise.</summary>
    public long? FragmentedClusters { get; init; }

    public long? CompressedClusters { get; init; }

    /// <summary>One line per problem found, for the human report.</summary>
    public IReadOnlyList<string> Messages { get; init; } = [];

    /// <summary>qemu-img check's exit code: 0 clean, 1 not completed, 2 corruptions, 3 leaks only, 63 unsupported.</summary>
    public int ExitCode =>
        !Supported ? 63
        : CheckErrors > 0 ? 1
        : Corruptions > 0 ? 2
        : Leaks > 0 ? 3
        : 0;
}
