namespace QedFuse.Block.Partitions;

/// <summary>One partition of a disk: its number as Linux gives it (pN) and its byte range.</summary>
public readonly record struct Partition(int Number, long Offset, long Length);
