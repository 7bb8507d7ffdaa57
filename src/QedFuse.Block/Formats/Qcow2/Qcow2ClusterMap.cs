using System.Buffers;
using QedFuse.Block.Clusters;
using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// Maps virtual offsets through the active L1 table and the cached L2 tables (QEMU's
/// qcow2-cluster.c), and owns the metadata state of a writable image: L1, L2 cache,
/// refcounts and allocator, allocations in flight, the set of metadata clusters. One gate
/// guards it all; callers get values (runs, plans), never live tables.
/// </summary>
/// <remarks>
/// Every entry is checked before it is trusted: a table or data offset that is misaligned,
/// outside the file or on a metadata cluster fails that request with EIO. A data write that
/// would land on metadata (an allocator bug or a corrupt entry) is refused, the image is
/// marked corrupt and failed. Writes follow the seeds' order: wait for an overlapping
/// allocation in flight, write copied clusters in place, allocate the rest (copy-on-write
/// from the backing chain, a snapshot-shared cluster or a compressed cluster).
/// </remarks>
internal sealed class Qcow2ClusterMap : IClusterWriteMap
{
    private sealed record Reservation(CachedTable Table, bool Reused);

    private readonly HostFile _file;
    private readonly Qcow2Geometry _geo;
    private readonly Qcow2Header _header;
    private readonly byte _compressionType;
    private readonly ulong[] _l1;
    private readonly MetadataGate _gate = new();
    private readonly TableCache _l2Cache;
    private readonly RefcountStore? _refcounts;
    private readonly InFlightClusters _inFlight;
    private readonly HostIoEpochs _epochs = new();
    private readonly HashSet<long> _metadata = [];
    private readonly Action<string> _markCorrupt;
    private readonly object _decompressedLock = new();
    private readonly byte[] _decompressed;
    private DirtyRange _l1Dirty;
    private ulong _decompressedEntry;
    private long _fileLength;

    public Qcow2ClusterMap(HostFile file, Qcow2Layout layout, RefcountStore? refcounts, int cacheTables, Action<string> markCorrupt, MetadataStatistics stats)
    {
        _file = file;
        _geo = layout.Geometry;
        _header = layout.Header;
        _compressionType = layout.Header.CompressionType;
        _l1 = layout.L1;
        _refcounts = refcounts;
        _markCorrupt = markCorrupt;
        _fileLength = file.Length;
        _inFlight = new InFlightClusters(_gate);
        _l2Cache = new TableCache(_gate, file.Path, cacheTables, _geo.L2Entries, (offset, entries) => TableCodec.BigEndian.Read(file, offset, entries), stats);
        _decompressed = new byte[_geo.ClusterSize];
        CollectMetadataClusters(layout);
    }

    public bool FreshClustersReadAsZeros => false;

    /// <summary>More tables are dirty than the cache holds: flush.</summary>
    public bool NeedsFlush
    {
        get
        {
            lock (_gate.Sync)
            {
                return _l2Cache.OverCapacity;
            }
        }
    }

    /// <summary>
    /// Enough freed space waits for a write-back that the next allocations would rather reuse
    /// it than grow the file (after a large discard).
    /// </summary>
    public bool FreesPending
    {
        get
        {
            lock (_gate.Sync)
            {
                return _refcounts is { } r && r.DeferredFreeBytes >= Math.Max(1L << 20, _fileLength / 16);
            }
        }
    }

    /// <summary>No allocation in flight and nothing dirty.</summary>
    public bool IsQuiescent
    {
        get
        {
            lock (_gate.Sync)
            {
                return _inFlight.Allocations == 0 && _l1Dirty.IsEmpty && !_l2Cache.Tables.Any(t => t.IsDirty)
                    && _refcounts is not { IsDirty: true } && _refcounts is not { HasDeferredFrees: true };
            }
        }
    }

    public ClusterRun Map(long offset, long length)
    {
        lock (_gate.Sync)
        {
            long segment = Math.Min(length, _geo.BytesToTableEnd(offset));
            CachedTable? table = TableLocked(offset);
            return table is null ? new ClusterRun(RunKind.Unallocated, segment) : RunLocked(table.Entries, offset, segment);
        }
    }

    public ClusterRun MapForRead(long offset, long length)
    {
        lock (_gate.Sync)
        {
            ClusterRun run = Map(offset, length);
            return run.Kind is RunKind.Data or RunKind.Compressed ? run with { Ticket = _epochs.Begin() } : run;
        }
    }

    public void EndRead(in ClusterRun run)
    {
        if (run.Ticket >= 0)
        {
            lock (_gate.Sync)
            {
                _epochs.End(run.Ticket);
            }
        }
    }

    public void EndInPlace(in WritePlan plan)
    {
        lock (_gate.Sync)
        {
            _epochs.End(plan.Ticket);
        }
    }

    public void ReadCompressed(ulong entry, long offsetInCluster, Span<byte> destination)
    {
        lock (_decompressedLock)
        {
            if (_decompressedEntry != entry)
            {
                Decompress(entry);
                _decompressedEntry = entry;
            }

            _decompressed.AsSpan((int)offsetInCluster, destination.Length).CopyTo(destination);
        }
    }

    public WritePlan PlanWrite(long offset, long length)
    {
        RefcountStore refcounts = _refcounts ?? throw new InvalidOperationException("read-only image");
        int bits = _geo.ClusterBits;
        lock (_gate.Sync)
        {
            while (true)
            {
                _file.ThrowIfFailed();
                long segment = Math.Min(length, _geo.BytesToTableEnd(offset));
                long first = offset >> bits;

                // The table first (loading it releases the gate), then the in-flight check.
                CachedTable table = WritableTableLocked(offset);
                if (_inFlight.Contains(first))
                {
                    _gate.WaitLocked();
                    continue;
                }

                int i = _geo.L2Index(offset);
                ulong entry = table.Entries[i];
                Qcow2ClusterKind kind = Qcow2Entry.Kind(entry);
                long host = Qcow2Entry.StandardOffset(entry);
                bool owned = kind is Qcow2ClusterKind.Normal or Qcow2ClusterKind.ZeroAllocated
                    && ValidDataLocked(host, offset) && (entry & Qcow2Entry.Copied) != 0
                    && refcounts.Get(host >> bits) == 1;
                if (kind == Qcow2ClusterKind.Normal && owned)
                {
                    ClusterRun run = RunLocked(table.Entries, offset, segment);
                    long inPlace = InPlaceLengthLocked(table.Entries, i, run.Length + _geo.OffsetInCluster(offset));
                    long len = Math.Min(run.Length, inPlace - _geo.OffsetInCluster(offset));
                    CheckDataWriteLocked(run.HostOffset, len);
                    return new WritePlan(offset, len, run.HostOffset, Allocating: false, Ticket: _epochs.Begin());
                }

                // Allocate: one cluster for a shared, compressed or zero-allocated one; a run of
                // unallocated or zero clusters otherwise, stopped by any allocation in flight.
                long last = first;
                if (kind is Qcow2ClusterKind.Unallocated or Qcow2ClusterKind.ZeroPlain)
                {
                    last = (offset + segment - 1) >> bits;
                    for (long c = first + 1, j = i + 1; c <= last; c++, j++)
                    {
                        if (Qcow2Entry.Kind(table.Entries[j]) != kind)
                        {
                            last = c - 1;
                            break;
                        }
                    }

                    long stop = _inFlight.FirstAfter(first, last);
                    last = stop < 0 ? last : stop - 1;
                }

                int clusters = (int)(last - first + 1);
                bool reuse = kind == Qcow2ClusterKind.ZeroAllocated && owned;
                long newHost = reuse ? host : refcounts.Allocate(clusters);
                CheckDataWriteLocked(newHost, (long)clusters << bits);
                _fileLength = Math.Max(_fileLength, newHost + ((long)clusters << bits));
                CopySource source = kind switch
                {
                    Qcow2ClusterKind.Unallocated => CopySource.Backing,
                    Qcow2ClusterKind.Normal => CopySource.HostCluster,
                    Qcow2ClusterKind.Compressed => CopySource.Compressed,
                    _ => CopySource.Zeros,
                };
                _inFlight.Add(first, clusters);
                table.Pins++;
                long planLength = Math.Min(segment, ((last + 1) << bits) - offset);
                return new WritePlan(offset, planLength, newHost, Allocating: true, source, first, clusters,
                    SourceHostOffset: host, SourceEntry: entry, Token: new Reservation(table, reuse));
            }
        }
    }

    public void Commit(in WritePlan plan)
    {
        var r = (Reservation)plan.Token!;
        lock (_gate.Sync)
        {
            int index = _geo.L2Index(plan.FirstCluster << _geo.ClusterBits);
            for (int k = 0; k < plan.Clusters; k++)
            {
                ulong old = r.Table.Entries[index + k];
                if (!r.Reused)
                {
                    ReleaseLocked(old);
                }

                r.Table.Entries[index + k] = Qcow2Entry.Copied | (ulong)(plan.HostOffset + ((long)k << _geo.ClusterBits));
            }

            r.Table.Dirty.Mark(index, index + plan.Clusters - 1);
            r.Table.Pins--;
            _inFlight.Remove(plan.FirstCluster, plan.Clusters);
        }
    }

    public void Abort(in WritePlan plan)
    {
        var r = (Reservation)plan.Token!;
        lock (_gate.Sync)
        {
            if (!r.Reused)
            {
                _refcounts!.FreeUnlinked(plan.HostOffset, plan.Clusters);
            }

            r.Table.Pins--;
            _inFlight.Remove(plan.FirstCluster, plan.Clusters);
        }
    }

    /// <summary>
    /// Makes whole clusters read as zeros: zero entries (v3), or unallocated entries where
    /// nothing shows through (no backing file). Clusters that stop being referenced are freed
    /// once the new entries are durable; with <paramref name="unmap"/> false an owned cluster
    /// keeps its host cluster (zero flag on it). Returns the bytes handled, or 0 when the
    /// format cannot express it (v2 over a backing file: the caller writes zeros).
    /// </summary>
    public long ZeroClusters(long offset, long length, bool unmap, bool hasBacking)
    {
        lock (_gate.Sync)
        {
            while (true)
            {
                _file.ThrowIfFailed();
                long segment = Math.Min(length, _geo.BytesToTableEnd(offset));
                long first = offset >> _geo.ClusterBits;
                long count = segment >> _geo.ClusterBits;
                bool v3 = _header.Version == 3;
                if (!v3 && hasBacking)
                {
                    return 0;
                }

                CachedTable? table = TableLocked(offset);
                if (table is null && !hasBacking)
                {
                    return segment; // nothing allocated, nothing shows through
                }

                table = WritableTableLocked(offset);
                if (_inFlight.Any(first, count))
                {
                    _gate.WaitLocked();
                    continue;
                }

                int i = _geo.L2Index(offset);
                for (int j = i; j < i + count; j++)
                {
                    ulong old = table.Entries[j];
                    Qcow2ClusterKind kind = Qcow2Entry.Kind(old);
                    long host = Qcow2Entry.StandardOffset(old);
                    bool keep = v3 && !unmap && kind is Qcow2ClusterKind.Normal or Qcow2ClusterKind.ZeroAllocated
                        && ValidDataLocked(host, (first + j - i) << _geo.ClusterBits) && (old & Qcow2Entry.Copied) != 0
                        && _refcounts!.Get(host >> _geo.ClusterBits) == 1;
                    ulong entry = !v3 ? 0
                        : keep ? Qcow2Entry.Copied | (ulong)host | Qcow2Entry.ZeroFlag
                        : kind == Qcow2ClusterKind.Unallocated && !hasBacking ? 0
                        : Qcow2Entry.ZeroFlag;
                    if (entry == old)
                    {
                        continue;
                    }

                    if (!keep)
                    {
                        ReleaseLocked(old);
                    }

                    table.Entries[j] = entry;
                    table.Dirty.Mark(j, j);
                }

                return segment;
            }
        }
    }

    /// <summary>
    /// Copies out every dirty piece of metadata for one flush pass, in the order qcow2 needs:
    /// refcount blocks, refcount table, header (a moved table), L2 tables, L1. Pins the tables.
    /// </summary>
    public FlushPass TakeFlushPass()
    {
        lock (_gate.Sync)
        {
            var (blocks, table, header) = _refcounts!.TakeWrites();
            int frees = _refcounts.DeferredFreeCount;
            var l2 = new List<MetadataWrite>();
            var pinned = new List<CachedTable>();
            foreach (CachedTable t in _l2Cache.Tables.Where(t => t.IsDirty && !t.Loading))
            {
                var (first, count) = t.IsNew ? (0, _geo.L2Entries) : TableCodec.SectorRange(t.Dirty.First, t.Dirty.Last, _geo.L2Entries);
                l2.Add(new MetadataWrite(t.HostOffset + first * sizeof(ulong), TableCodec.BigEndian.Encode(t.Entries, first, count),
                    t.IsNew ? IoEvent.L2Alloc : IoEvent.L2Update));
                t.IsNew = false;
                t.Dirty.Clear();
                t.Pins++;
                pinned.Add(t);
            }

            var l1 = new List<MetadataWrite>();
            if (!_l1Dirty.IsEmpty)
            {
                var (first, count) = TableCodec.SectorRange(_l1Dirty.First, _l1Dirty.Last, _l1.Length);
                l1.Add(new MetadataWrite((long)_header.L1TableOffset + first * sizeof(ulong), TableCodec.BigEndian.Encode(_l1, first, count), IoEvent.L1Update));
                _l1Dirty.Clear();
            }

            var pass = new StagedWriteBack().Stage(blocks).Stage(table).Stage(header is { } h ? [h] : []).Stage(l2).Stage(l1);
            return new FlushPass(pass, written =>
            {
                lock (_gate.Sync)
                {
                    pinned.ForEach(t => t.Pins--);
                    if (written)
                    {
                        if (header is not null)
                        {
                            _refcounts.ReleaseOldTable();
                        }

                        // The entries that dropped these references are durable now.
                        _refcounts.ApplyDeferredFrees(frees, _epochs.Settled);
                    }

                    _l2Cache.EvictDownToCapacity();
                }
            });
        }
    }

    /// <summary>The refcount writes left after a pass applied its frees (a pass of their own).</summary>
    public StagedWriteBack TakeRefcountPass()
    {
        lock (_gate.Sync)
        {
            var (blocks, table, _) = _refcounts!.TakeWrites();
            return new StagedWriteBack().Stage(blocks).Stage(table);
        }
    }

    /// <summary>Repair: sets stored refcounts to the references a check counted.</summary>
    public void SetRefcounts(IEnumerable<(long Cluster, ulong Counted)> counts)
    {
        lock (_gate.Sync)
        {
            foreach (var (cluster, counted) in counts)
            {
                _refcounts!.Set(cluster, counted);
            }
        }
    }

    /// <summary>Repair: makes every copied flag of the active tables say whether the refcount is exactly 1; returns how many it changed.</summary>
    public long FixCopiedFlags()
    {
        long changed = 0;
        lock (_gate.Sync)
        {
            for (int i = 0; i < _l1.Length; i++)
            {
                long l2Offset = Qcow2Entry.L1Offset(_l1[i]);
                if (l2Offset == 0 || !IsValidCluster(l2Offset))
                {
                    continue;
                }

                ulong l1Entry = CopiedAs(_l1[i], l2Offset);
                if (l1Entry != _l1[i])
                {
                    _l1[i] = l1Entry;
                    _l1Dirty.Mark(i, i);
                    changed++;
                }

                CachedTable table = _l2Cache.GetLocked(l2Offset);
                for (int j = 0; j < table.Entries.Length; j++)
                {
                    ulong e = table.Entries[j];
                    if (Qcow2Entry.Kind(e) is Qcow2ClusterKind.Normal or Qcow2ClusterKind.ZeroAllocated
                        && CopiedAs(e, Qcow2Entry.StandardOffset(e)) is var fixedEntry && fixedEntry != e)
                    {
                        table.Entries[j] = fixedEntry;
                        table.Dirty.Mark(j, j);
                        changed++;
                    }
                }
            }
        }

        return changed;
    }

    private ulong CopiedAs(ulong entry, long host) =>
        _refcounts!.Get(host >> _geo.ClusterBits) == 1 ? entry | Qcow2Entry.Copied : entry & ~Qcow2Entry.Copied;

    public void TrimFile()
    {
        lock (_gate.Sync)
        {
            if (_inFlight.Allocations == 0)
            {
                _refcounts!.TrimFile();
            }
        }
    }

    private void Decompress(ulong entry)
    {
        Qcow2Entry.CompressedExtent extent = Qcow2Entry.Compressed(entry, _geo);
        byte[] compressed = ArrayPool<byte>.Shared.Rent(extent.Length);
        try
        {
            _file.ReadExactly(extent.Offset, compressed.AsSpan(0, extent.Length));
            if (!ClusterCompression.TryDecompress(_compressionType, compressed, extent.Length, _decompressed))
            {
                _decompressedEntry = 0;
                throw new CorruptImageException(_file.Path,
                    $"compressed cluster at host offset {extent.Offset} ({extent.Length} bytes) does not decompress to {_geo.ClusterSize} bytes");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }

    /// <summary>The L2 table for <paramref name="offset"/>, or null when its L1 entry is empty.</summary>
    private CachedTable? TableLocked(long offset)
    {
        long l1Index = _geo.L1Index(offset);
        long l2Offset = Qcow2Entry.L1Offset(_l1[l1Index]);
        if (l2Offset == 0)
        {
            return null;
        }

        if (!IsValidCluster(l2Offset))
        {
            throw new CorruptImageException(_file.Path,
                $"L1 entry {l1Index} (virtual offset {l1Index * _geo.L2Span}) points to invalid L2 table offset {l2Offset}");
        }

        return _l2Cache.GetLocked(l2Offset);
    }

    /// <summary>
    /// The L2 table for <paramref name="offset"/>, made writable: created when missing; copied
    /// when shared with a snapshot (its L1 entry not "copied"), the copy taking the active L1
    /// entry and the old table freed once that entry is durable.
    /// </summary>
    private CachedTable WritableTableLocked(long offset)
    {
        long l1Index = _geo.L1Index(offset);
        CachedTable? old = TableLocked(offset);
        ulong l1Entry = _l1[l1Index];
        if (old is not null && (l1Entry & Qcow2Entry.Copied) != 0 && _refcounts!.Get(old.HostOffset >> _geo.ClusterBits) == 1)
        {
            return old;
        }

        long host = _refcounts!.Allocate(1);
        CheckDataWriteLocked(host, _geo.ClusterSize);
        _fileLength = Math.Max(_fileLength, host + _geo.ClusterSize);
        CachedTable table = _l2Cache.AddNewLocked(host);
        if (old is not null)
        {
            for (int j = 0; j < old.Entries.Length; j++)
            {
                ulong e = old.Entries[j];
                table.Entries[j] = Qcow2Entry.Kind(e) is Qcow2ClusterKind.Normal or Qcow2ClusterKind.ZeroAllocated
                    && _refcounts.Get(Qcow2Entry.StandardOffset(e) >> _geo.ClusterBits) != 1
                        ? e & ~Qcow2Entry.Copied
                        : e;
            }

            _refcounts.DeferFree(old.HostOffset, _geo.ClusterSize, _epochs.Stamp());
            _metadata.Remove(old.HostOffset >> _geo.ClusterBits);
        }

        _metadata.Add(host >> _geo.ClusterBits);
        _l1[l1Index] = Qcow2Entry.Copied | (ulong)host;
        _l1Dirty.Mark((int)l1Index, (int)l1Index);
        return table;
    }

    /// <summary>Drops this table entry's reference to its clusters (deferred until the entry that replaces it is durable).</summary>
    private void ReleaseLocked(ulong entry)
    {
        switch (Qcow2Entry.Kind(entry))
        {
            case Qcow2ClusterKind.Normal or Qcow2ClusterKind.ZeroAllocated:
                _refcounts!.DeferFree(Qcow2Entry.StandardOffset(entry), _geo.ClusterSize, _epochs.Stamp());
                break;
            case Qcow2ClusterKind.Compressed:
                Qcow2Entry.CompressedExtent extent = Qcow2Entry.Compressed(entry, _geo);
                _refcounts!.DeferFree(extent.SectorStart, extent.SectorEnd - extent.SectorStart, _epochs.Stamp());
                break;
        }
    }

    /// <summary>
    /// A data cluster a write may use or copy: aligned, inside the file, not metadata. A write
    /// that meets anything else never goes ahead: the image is marked corrupt and failed (EIO),
    /// as QEMU does, since the metadata can no longer be trusted with writes.
    /// </summary>
    private bool ValidDataLocked(long host, long virtualOffset)
    {
        if (!IsValidCluster(host) || _metadata.Contains(host >> _geo.ClusterBits) || _refcounts!.IsMetadata(host >> _geo.ClusterBits))
        {
            string problem = $"L2 entry for virtual offset {_geo.ClusterStart(virtualOffset)} points to {host}, which is not a data cluster";
            throw Refuse(problem);
        }

        return true;
    }

    /// <summary>Bytes from the start of entry <paramref name="i"/>'s cluster that can be written in place (owned, contiguous).</summary>
    private long InPlaceLengthLocked(ulong[] entries, int i, long wanted)
    {
        long length = _geo.ClusterSize;
        long host = Qcow2Entry.StandardOffset(entries[i]);
        for (int j = i + 1; length < wanted && j < entries.Length; j++)
        {
            ulong e = entries[j];
            if (Qcow2Entry.Kind(e) != Qcow2ClusterKind.Normal || (e & Qcow2Entry.Copied) == 0
                || Qcow2Entry.StandardOffset(e) != host + length || !ValidDataLocked(host + length, 0)
                || _refcounts!.Get((host + length) >> _geo.ClusterBits) != 1)
            {
                break;
            }

            length += _geo.ClusterSize;
        }

        return length;
    }

    /// <summary>The overlap check: data never goes to a metadata cluster. A hit is an allocator bug or corrupt metadata.</summary>
    private void CheckDataWriteLocked(long host, long length)
    {
        for (long c = host >> _geo.ClusterBits; c <= (host + length - 1) >> _geo.ClusterBits; c++)
        {
            if (c == 0 || _metadata.Contains(c) || _refcounts!.IsMetadata(c))
            {
                string problem = $"a data write at host offset {host} (+{length}) would overwrite metadata (cluster {c}); refused";
                throw Refuse(problem);
            }
        }
    }

    /// <summary>Marks the image corrupt and failed: after a write that would have hit metadata, nothing more is written.</summary>
    private ImageFailedException Refuse(string problem)
    {
        _markCorrupt(problem);
        _file.Fail(problem);
        return new ImageFailedException(_file.Path, problem);
    }

    private ClusterRun RunLocked(ulong[] entries, long offset, long segment)
    {
        int i = _geo.L2Index(offset);
        ulong head = entries[i];
        Qcow2ClusterKind kind = Qcow2Entry.Kind(head);
        long inCluster = _geo.OffsetInCluster(offset);
        long length = _geo.ClusterSize - inCluster;
        switch (kind)
        {
            case Qcow2ClusterKind.Compressed:
                Qcow2Entry.CompressedExtent extent = Qcow2Entry.Compressed(head, _geo);
                if (extent.Offset == 0 || extent.Offset >= _fileLength)
                {
                    throw Corrupt(offset, $"points to compressed data at {extent.Offset}, outside the {_fileLength}-byte file");
                }

                return new ClusterRun(RunKind.Compressed, Math.Min(length, segment), Entry: head);
            case Qcow2ClusterKind.Normal:
                long host = Qcow2Entry.StandardOffset(head);
                if (!IsValidCluster(host))
                {
                    throw Corrupt(offset, $"holds invalid cluster offset {host}");
                }

                for (int j = i + 1; length < segment && j < entries.Length; j++)
                {
                    if (Qcow2Entry.Kind(entries[j]) != Qcow2ClusterKind.Normal
                        || Qcow2Entry.StandardOffset(entries[j]) != host + (length + inCluster)
                        || !IsValidCluster(host + length + inCluster))
                    {
                        break;
                    }

                    length += _geo.ClusterSize;
                }

                return new ClusterRun(RunKind.Data, Math.Min(length, segment), host + inCluster);
            default:
                for (int j = i + 1; length < segment && j < entries.Length && SameReadKind(kind, Qcow2Entry.Kind(entries[j])); j++)
                {
                    length += _geo.ClusterSize;
                }

                return new ClusterRun(kind == Qcow2ClusterKind.Unallocated ? RunKind.Unallocated : RunKind.Zero, Math.Min(length, segment));
        }
    }

    private static bool SameReadKind(Qcow2ClusterKind a, Qcow2ClusterKind b) =>
        a == b || (a is Qcow2ClusterKind.ZeroPlain or Qcow2ClusterKind.ZeroAllocated && b is Qcow2ClusterKind.ZeroPlain or Qcow2ClusterKind.ZeroAllocated);

    private CorruptImageException Corrupt(long offset, string problem) =>
        new(_file.Path, $"L2 entry for virtual offset {_geo.ClusterStart(offset)} {problem}");

    /// <summary>A cluster offset a table may hold: aligned, past the header cluster, inside the file.</summary>
    private bool IsValidCluster(long hostOffset) =>
        (hostOffset & (_geo.ClusterSize - 1)) == 0 && hostOffset >= _geo.ClusterSize && hostOffset < _fileLength;

    /// <summary>The clusters data must never be written to, besides the refcount structures: header, L1, active L2 tables, snapshot table and snapshot L1 tables.</summary>
    private void CollectMetadataClusters(Qcow2Layout layout)
    {
        void AddRange(long offset, long length)
        {
            for (long c = offset >> _geo.ClusterBits; length > 0 && c <= (offset + length - 1) >> _geo.ClusterBits; c++)
            {
                _metadata.Add(c);
            }
        }

        AddRange(0, _geo.ClusterSize);
        AddRange((long)layout.Header.L1TableOffset, (long)layout.Header.L1Size * sizeof(ulong));
        AddRange((long)layout.Header.SnapshotsOffset, layout.SnapshotTableBytes);
        foreach (Qcow2Snapshot s in layout.Snapshots)
        {
            AddRange(s.L1TableOffset, (long)s.L1Size * sizeof(ulong));
        }

        foreach (ulong e in _l1)
        {
            if (Qcow2Entry.L1Offset(e) is var o && o != 0)
            {
                _metadata.Add(o >> _geo.ClusterBits);
            }
        }
    }
}
