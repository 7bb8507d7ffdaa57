namespace QedFuse.Block.Metadata;

/// <summary>One metadata write of a flush pass: bytes for a host offset, named for fault injection.</summary>
internal readonly record struct MetadataWrite(long HostOffset, byte[] Bytes, IoEvent Event);

/// <summary>
/// A flush pass as ordered stages with barriers between them: every write of a stage is
/// issued, then one fdatasync makes them durable before any write of the next stage starts.
/// A format states its ordering rules as stages ("new L2 tables after the data they point to,
/// L1 entries after the new tables"; qcow2: "refcount blocks, then the refcount table, then
/// L2, then L1"); QEMU's qcow2-cache "depends" is the same idea. Empty stages cost nothing.
/// A failed sync fails the host file (<see cref="HostFile.Sync"/>); a failed write is the
/// caller's to handle (QED marks the pass dirty again and retries; qcow2 fails the image).
/// </summary>
internal sealed class StagedWriteBack
{
    private readonly List<List<MetadataWrite>> _stages = [];

    /// <summary>Starts a stage that may begin only once everything before it is durable.</summary>
    public StagedWriteBack Stage(IEnumerable<MetadataWrite> writes)
    {
        _stages.Add(writes.ToList());
        return this;
    }

    public bool IsEmpty => _stages.All(s => s.Count == 0);

    /// <summary>Syncs the data written so far, then each non-empty stage followed by a sync.</summary>
    public void Run(HostFile file)
    {
        file.Sync();
        foreach (List<MetadataWrite> stage in _stages.Where(s => s.Count > 0))
        {
            foreach (MetadataWrite w in stage)
            {
                file.Write(w.HostOffset, w.Bytes, w.Event);
            }

            file.Sync();
        }
    }
}
