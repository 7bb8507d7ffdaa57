using QedFuse.Block.Metadata;

namespace QedFuse.Block.Qed;

/// <summary>
/// The dirty metadata of one flush pass, copied out under the metadata lock so that entries
/// added while the pass writes (whose data may not be durable yet) stay out of it.
/// </summary>
internal sealed class MetadataSnapshot
{
    public sealed record TablePiece(CachedTable Table, long HostOffset, byte[] Bytes, bool WasNew, DirtyRange Range);

    public List<TablePiece> L2 { get; } = [];

    public (long HostOffset, byte[] Bytes, DirtyRange Range)? L1 { get; set; }

    public bool IsEmpty => L2.Count == 0 && L1 is null;
}
