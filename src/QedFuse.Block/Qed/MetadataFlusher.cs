using QedFuse.Block.Metadata;

namespace QedFuse.Block.Qed;

/// <summary>
/// Writes dirty metadata back in the order that keeps the image consistent after a crash at
/// any point: need-check on disk; data durable (the allocator has already grown the file);
/// L2 tables (new ones whole); durable; then the L1 entries that point to new tables;
/// durable (Metadata/StagedWriteBack); the file trimmed to the last allocated cluster.
/// Flush passes never overlap.
/// </summary>
internal sealed class MetadataFlusher
{
    private readonly object _gate = new();
    private readonly HostFile _file;
    private readonly ClusterMapper _mapper;
    private readonly NeedCheckFlag _needCheck;
    private readonly MetadataStatistics _stats;

    public MetadataFlusher(HostFile file, ClusterMapper mapper, NeedCheckFlag needCheck, MetadataStatistics stats)
    {
        _stats = stats;
        _file = file;
        _mapper = mapper;
        _needCheck = needCheck;
    }

    /// <summary>Every write acknowledged before the call is durable on return.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            FlushPass pass = _mapper.TakeFlushPass();
            if (pass.Writes.IsEmpty)
            {
                pass.Complete(true);
                _mapper.TrimFile();
                _file.Sync();
                return;
            }

            bool written = false;
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                _needCheck.Set();
                pass.Writes.Run(_file);

                // The allocator's grow-ahead tail would read as leaked clusters: give it back
                // (need-check is set, so a crash before this is durable is repaired).
                _mapper.TrimFile();
                written = true;
            }
            finally
            {
                pass.Complete(written);
                _stats.FlushPasses++;
                _stats.FlushTimeNs += (long)System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalNanoseconds;
            }
        }
    }

    /// <summary>
    /// Flushes, then clears need-check if nothing is dirty, no allocation is in flight and no
    /// corruption is known.
    /// </summary>
    public void Checkpoint()
    {
        Flush();
        lock (_gate)
        {
            if (_needCheck.IsSet && !_needCheck.KnownCorrupt)
            {
                _mapper.ClearNeedCheckIfQuiescent(_needCheck);
            }
        }
    }
}
