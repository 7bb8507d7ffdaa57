using QedFuse.Block.Clusters;
using QedFuse.Block.Metadata;

namespace QedFuse.Block.Qed;

/// <summary>
/// Maps virtual offsets to clusters (QEMU's qed-cluster.c) and owns the metadata state: the
/// L1 table, the L2 cache (Metadata/TableCache), clusters being allocated (Clusters/InFlightClusters),
/// the allocator. One gate (Metadata/MetadataGate) guards it
/// all. Data and table I/O never happens under it: an L2 table load releases it while
/// reading, and callers get values (runs, plans), never references to live tables, so host
/// I/O runs unlocked and in parallel. The one exception is the allocator's ftruncate (growing
/// the file ahead of allocations, trimming it after a flush), which must be ordered with the
/// allocations themselves.
/// </summary>
/// <remarks>
/// Invariants: a table entry changes in memory only after the data it points to is written
/// (so a reader never sees a half-linked cluster); a virtual cluster has at most one
/// allocation in flight (later writers wait, then write in place); dirty, pinned or loading
/// tables are never evicted.
/// </remarks>
internal sealed class ClusterMapper : IClusterWriteMap
{
    private readonly MetadataGate _gate = new();
    private readonly string _path;
    private readonly HostFile _file;
    private readonly QedGeometry _geo;
    private readonly ulong[] _l1;
    private readonly long _l1Offset;
    private readonly TableCache _cache;
    private readonly ClusterAllocator _allocator;
    private readonly MetadataStatistics _stats;
    private readonly AliasGuard _guard;
    private readonly InFlightClusters _inFlight;
    private DirtyRange _l1Dirty;

    public ClusterMapper(HostFile file, QedGeometry geo, ulong[] l1, long l1Offset, int cacheTables, NeedCheckFlag needCheck, MetadataStatistics stats)
    {
        _stats = stats;
        _path = file.Path;
        _file = file;
        _geo = geo;
        _l1 = l1;
        _l1Offset = l1Offset;
        _cache = new TableCache(_gate, file.Path, cacheTables, geo.TableEntries, (offset, entries) => TableCodec.LittleEndian.Read(file, offset, entries), stats);
        _inFlight = new InFlightClusters(_gate);
        _allocator = new ClusterAllocator(file, geo.ClusterSize, needCheck);
        _guard = new AliasGuard(geo, l1, l1Offset, _allocator.ValidLimit);
        TableCount = l1.Count(e => e != 0);
    }

    /// <summary>L2 tables referenced from L1 (for the allocated-bytes estimate).</summary>
    public int TableCount { get; private set; }

    public long FileEnd
    {
        get
        {
            lock (_gate.Sync)
            {
                return _allocator.End;
            }
        }
    }

    /// <summary>More tables are cached than the cache holds because too many are dirty: flush.</summary>
    public bool NeedsFlush
    {
        get
        {
            lock (_gate.Sync)
            {
                return _cache.OverCapacity;
            }
        }
    }

    /// <summary>
    /// When no allocation is in flight and nothing is dirty, the on-disk metadata is complete:
    /// then (with allocation held off) trims the grow-ahead tail and clears need-check, so no
    /// allocation can grow the file between the test and the clear. False when not quiescent.
    /// </summary>
    public bool ClearNeedCheckIfQuiescent(NeedCheckFlag needCheck)
    {
        lock (_gate.Sync)
        {
            if (_inFlight.Allocations != 0 || !_l1Dirty.IsEmpty || _cache.Tables.Any(t => t.IsDirty))
            {
                return false;
            }

            if (_allocator.TrimFile())
            {
                _file.Sync();
            }

            needCheck.Clear();
            return true;
        }
    }

    /// <summary>Bytes of table sectors changed in memory and not yet written (what the next flush pass writes).</summary>
    public long DirtyBytes
    {
        get
        {
            lock (_gate.Sync)
            {
                long bytes = 0;
                foreach (CachedTable t in _cache.Tables.Where(t => t.IsDirty && !t.Loading))
                {
                    bytes += (t.IsNew ? _geo.TableEntries : TableCodec.SectorRange(t.Dirty.First, t.Dirty.Last, _geo.TableEntries).Count) * sizeof(ulong);
                }

                return bytes + (_l1Dirty.IsEmpty ? 0 : TableCodec.SectorRange(_l1Dirty.First, _l1Dirty.Last, _geo.TableEntries).Count * sizeof(ulong));
            }
        }
    }

    /// <summary>The run that starts at <paramref name="offset"/>, cut at the end of its L2 table and at <paramref name="length"/>.</summary>
    public Allocation Map(long offset, long length)
    {
        lock (_gate.Sync)
        {
            return LookupLocked(offset, length, out _);
        }
    }

    /// <summary>QED appends past the end of the file: fresh clusters read as zeros (<see cref="ClusterAllocator"/>).</summary>
    public bool FreshClustersReadAsZeros => true;

    ClusterRun IClusterSource.Map(long offset, long length) => ToRun(Map(offset, length));

    /// <summary>QED never reuses a cluster, so a read needs no guard against reuse.</summary>
    public ClusterRun MapForRead(long offset, long length) => ToRun(Map(offset, length));

    public void EndRead(in ClusterRun run)
    {
    }

    public void EndInPlace(in WritePlan plan)
    {
    }

    public void ReadCompressed(ulong entry, long offsetInCluster, Span<byte> destination) =>
        throw new InvalidOperationException($"{_path}: QED has no compressed clusters");

    private static ClusterRun ToRun(Allocation a) => a.State switch
    {
        AllocationState.Data => new ClusterRun(RunKind.Data, a.Length, a.HostOffset),
        AllocationState.Zero => new ClusterRun(RunKind.Zero, a.Length),
        _ => new ClusterRun(RunKind.Unallocated, a.Length),
    };

    /// <summary>
    /// Plans the next piece of a write: in place over allocated clusters, or an allocation of
    /// fresh clusters reserved for this request alone (the caller must then
    /// <see cref="Commit"/> or <see cref="Abort"/>).
    /// </summary>
    public WritePlan PlanWrite(long offset, long length)
    {
        int bits = _geo.ClusterBits;
        lock (_gate.Sync)
        {
            while (true)
            {
                Allocation run = LookupLocked(offset, length, out CachedTable? table);
                if (run.State == AllocationState.Data)
                {
                    return new WritePlan(offset, run.Length, run.HostOffset, Allocating: false);
                }

                long first = offset >> bits;
                long last = (offset + run.Length - 1) >> bits;
                if (_inFlight.Contains(first))
                {
                    _gate.WaitLocked();
                    continue;
                }

                long stop = _inFlight.FirstAfter(first, last);
                last = stop < 0 ? last : stop - 1;

                // Allocate first: if the file cannot grow, nothing below has happened yet.
                table ??= CreateTableLocked(_geo.L1Index(offset));
                int clusters = (int)(last - first + 1);
                long host = _allocator.Allocate(clusters);
                _inFlight.Add(first, clusters);
                table.Pins++;
                long length2 = Math.Min(run.Length, ((last + 1) << bits) - offset);
                // An unallocated cluster shows the backing chain; a zero cluster stays zeros (QEMU 7.2
                // wrongly copies from the backing file there).
                CopySource source = run.State == AllocationState.Unallocated ? CopySource.Backing : CopySource.Zeros;
                return new WritePlan(offset, length2, host, Allocating: true, source, first, clusters, Token: table);
            }
        }
    }

    /// <summary>Links the clusters of a finished allocating write into its L2 table.</summary>
    public void Commit(in WritePlan plan)
    {
        lock (_gate.Sync)
        {
            int index = _geo.L2Index(plan.FirstCluster << _geo.ClusterBits);
            var table = (CachedTable)plan.Token!;
            for (int k = 0; k < plan.Clusters; k++)
            {
                table.Entries[index + k] = (ulong)(plan.HostOffset + ((long)k << _geo.ClusterBits));
            }

            table.Dirty.Mark(index, index + plan.Clusters - 1);
            _stats.ClustersAllocated += plan.Clusters;
            ReleaseLocked(plan);
        }
    }

    /// <summary>Gives up an allocation whose data write failed; its clusters become a harmless leak.</summary>
    public void Abort(in WritePlan plan)
    {
        lock (_gate.Sync)
        {
            ReleaseLocked(plan);
        }
    }

    /// <summary>
    /// Turns whole unallocated clusters into zero clusters so they stop reading from the
    /// backing chain. Returns the run it looked at; data and zero runs are left to the caller.
    /// </summary>
    public Allocation ZeroUnallocated(long offset, long length)
    {
        lock (_gate.Sync)
        {
            while (true)
            {
                Allocation run = LookupLocked(offset, length, out CachedTable? table);
                if (run.State != AllocationState.Unallocated)
                {
                    return run;
                }

                long first = offset >> _geo.ClusterBits;
                long count = _geo.ClustersIn(run.Length);
                if (_inFlight.Any(first, count))
                {
                    _gate.WaitLocked();
                    continue;
                }

                table ??= CreateTableLocked(_geo.L1Index(offset));
                int index = _geo.L2Index(offset);
                table.Entries.AsSpan(index, (int)count).Fill(QedFormat.ZeroClusterEntry);
                table.Dirty.Mark(index, index + (int)count - 1);
                return run;
            }
        }
    }

    /// <summary>Gives back the file's unused grow-ahead tail; safe at any time, as it runs under the lock that allocates.</summary>
    public void TrimFile()
    {
        lock (_gate.Sync)
        {
            _ = _allocator.TrimFile();
        }
    }

    /// <summary>
    /// Copies out all dirty metadata for a flush pass in QED's order (L2 tables, new ones
    /// whole; then the L1 entries that point to them) and pins the tables involved.
    /// </summary>
    public FlushPass TakeFlushPass()
    {
        lock (_gate.Sync)
        {
            var l2 = new List<MetadataWrite>();
            var pieces = new List<(CachedTable Table, bool WasNew, DirtyRange Range)>();
            foreach (CachedTable t in _cache.Tables.Where(t => t.IsDirty && !t.Loading))
            {
                var (first, count) = t.IsNew ? (0, _geo.TableEntries) : TableCodec.SectorRange(t.Dirty.First, t.Dirty.Last, _geo.TableEntries);
                l2.Add(new MetadataWrite(t.HostOffset + first * sizeof(ulong), TableCodec.LittleEndian.Encode(t.Entries, first, count),
                    t.IsNew ? IoEvent.L2Alloc : IoEvent.L2Update));
                pieces.Add((t, t.IsNew, t.Dirty));
                t.Pins++;
                t.IsNew = false;
                t.Dirty.Clear();
            }

            var l1 = new List<MetadataWrite>();
            DirtyRange l1Range = _l1Dirty;
            if (!_l1Dirty.IsEmpty)
            {
                var (first, count) = TableCodec.SectorRange(_l1Dirty.First, _l1Dirty.Last, _geo.TableEntries);
                l1.Add(new MetadataWrite(_l1Offset + first * sizeof(ulong), TableCodec.LittleEndian.Encode(_l1, first, count), IoEvent.L1Update));
                _l1Dirty.Clear();
            }

            return new FlushPass(new StagedWriteBack().Stage(l2).Stage(l1), written =>
            {
                lock (_gate.Sync)
                {
                    foreach (var (table, wasNew, range) in pieces)
                    {
                        table.Pins--;
                        if (!written)
                        {
                            table.IsNew |= wasNew;
                            if (!range.IsEmpty)
                            {
                                table.Dirty.Mark(range.First, range.Last);
                            }
                        }
                    }

                    if (!written && !l1Range.IsEmpty)
                    {
                        _l1Dirty.Mark(l1Range.First, l1Range.Last);
                    }

                    _cache.EvictDownToCapacity();
                }
            });
        }
    }

    /// <summary>The run at <paramref name="offset"/>, cut at the end of its L2 table, and that table (null: no table yet).</summary>
    private Allocation LookupLocked(long offset, long length, out CachedTable? table)
    {
        long segment = Math.Min(length, _geo.BytesToTableEnd(offset));
        table = TableLocked(_geo.L1Index(offset));
        return table is null ? new Allocation(AllocationState.Unallocated, segment) : RunLocked(table, offset, segment);
    }

    private CachedTable? TableLocked(int l1Index)
    {
        ulong entry = _l1[l1Index];
        if (entry == 0)
        {
            return null;
        }

        if (!IsValidTableOffset(entry))
        {
            throw new CorruptImageException(_path,
                $"L1 entry {l1Index} (virtual offset {(long)l1Index * _geo.L2Span}) points to invalid L2 table offset {entry}");
        }

        if (_guard.TableProblem(l1Index) is { } problem)
        {
            throw new CorruptImageException(_path,
                $"L1 entry {l1Index} (virtual offset {(long)l1Index * _geo.L2Span}) points to an L2 table at {entry} that {problem}");
        }

        return _cache.GetLocked((long)entry, t => _guard.RegisterTable(t.HostOffset, l1Index, t.Entries));
    }

    private CachedTable CreateTableLocked(int l1Index)
    {
        long host = _allocator.Allocate(_geo.TableBytes >> _geo.ClusterBits);
        CachedTable t = _cache.AddNewLocked(host);
        _guard.AddNewTable(host);
        _l1[l1Index] = (ulong)host;
        _l1Dirty.Mark(l1Index, l1Index);
        TableCount++;
        return t;
    }

    private Allocation RunLocked(CachedTable table, long offset, long segment)
    {
        ulong[] e = table.Entries;
        int i = _geo.L2Index(offset);
        ulong head = e[i];
        long firstCluster = (offset >> _geo.ClusterBits) - i;
        AllocationState state = Classify(head, firstCluster + i);
        long cs = _geo.ClusterSize;
        long length = cs - _geo.OffsetInCluster(offset);
        ulong expect = head + (ulong)cs;
        for (int j = i + 1; length < segment && j < e.Length; j++)
        {
            // A run stops before an untrusted entry; the next lookup then fails on it.
            if (state == AllocationState.Data ? e[j] != expect || !IsTrustedData(e[j], firstCluster + j) : e[j] != head)
            {
                break;
            }

            expect += (ulong)cs;
            length += cs;
        }

        return new Allocation(state, Math.Min(length, segment),
            state == AllocationState.Data ? (long)head + _geo.OffsetInCluster(offset) : -1);
    }

    private AllocationState Classify(ulong entry, long virtualCluster) => entry switch
    {
        0 => AllocationState.Unallocated,
        QedFormat.ZeroClusterEntry => AllocationState.Zero,
        _ when !IsValidDataOffset(entry) => throw new CorruptImageException(_path,
            $"L2 entry for virtual offset {virtualCluster << _geo.ClusterBits} holds invalid cluster offset {entry}"),
        _ when _guard.DataProblem(entry, virtualCluster) is { } problem => throw new CorruptImageException(_path,
            $"L2 entry for virtual offset {virtualCluster << _geo.ClusterBits} holds cluster offset {entry}, which {problem}"),
        _ => AllocationState.Data,
    };

    private bool IsTrustedData(ulong entry, long virtualCluster) =>
        IsValidDataOffset(entry) && _guard.DataProblem(entry, virtualCluster) is null;

    private bool IsValidDataOffset(ulong offset) =>
        (offset & (ulong)(_geo.ClusterSize - 1)) == 0 && offset >= (ulong)_geo.HeaderBytes && offset < (ulong)_allocator.ValidLimit;

    private bool IsValidTableOffset(ulong offset) =>
        IsValidDataOffset(offset) && offset + (ulong)_geo.TableBytes - (ulong)_geo.ClusterSize < (ulong)_allocator.ValidLimit;

    private void ReleaseLocked(in WritePlan plan)
    {
        ((CachedTable)plan.Token!).Pins--;
        _inFlight.Remove(plan.FirstCluster, plan.Clusters);
    }
}
