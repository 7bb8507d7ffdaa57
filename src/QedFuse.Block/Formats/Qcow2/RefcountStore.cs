using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// The qcow2 refcounts in memory, and the cluster allocator built on them (QEMU's
/// qcow2-refcount.c). Allocation searches for free clusters (refcount 0) from a hint, so
/// freed clusters are reused; a refcount block that does not exist yet is placed at the first
/// cluster of the range it describes (it describes itself); the refcount table grows by
/// moving to a larger copy. Frees are deferred: a cluster's refcount drops only after the
/// entry that stopped pointing to it is durable (<see cref="ApplyDeferredFrees"/>), so a crash
/// may leak but never hands out a cluster still referenced on disk. Guarded by the image's
/// metadata gate; nothing here does I/O except reading a refcount block and growing the file.
/// </summary>
internal sealed class RefcountStore
{
    private sealed class Block
    {
        public required long Offset { get; init; }
        public required byte[] Data { get; init; }
        public bool IsNew { get; set; }
        public int DirtyFirst { get; set; } = int.MaxValue; // byte range, exclusive end
        public int DirtyEnd { get; set; }

        public bool IsDirty => IsNew || DirtyEnd > 0;

        public void MarkDirty(int first, int end)
        {
            DirtyFirst = Math.Min(DirtyFirst, first);
            DirtyEnd = Math.Max(DirtyEnd, end);
        }
    }

    private readonly HostFile _file;
    private readonly Qcow2Geometry _geo;
    private readonly Dictionary<long, Block> _blocks = [];
    private readonly List<(long Cluster, long Count, long Stamp)> _deferredFrees = [];
    private readonly ulong _max;
    private ulong[] _table;
    private long _tableOffset;
    private int _tableDirtyFirst = int.MaxValue;
    private int _tableDirtyEnd;
    private (long Offset, long Clusters)? _oldTable; // freed once the header points to the new one
    private bool _tableMoved;
    private long _fileLength;
    private readonly HashSet<long> _blockClusters = [];

    /// <summary>Clusters this session allocated or freed: the only ones a tail trim may cut (a free cluster we did not free may be a corrupt refcount of data still referenced).</summary>
    private readonly SparseBitSet _touched = new();
    private readonly long _openEndCluster;

    public RefcountStore(HostFile file, Qcow2Layout layout)
    {
        _file = file;
        _geo = layout.Geometry;
        _max = RefcountBlock.MaxValue(_geo.RefcountOrder);
        _tableOffset = (long)layout.Header.RefcountTableOffset;
        _table = new ulong[((long)layout.Header.RefcountTableClusters << _geo.ClusterBits) / sizeof(ulong)];
        TableCodec.BigEndian.Read(file, _tableOffset, _table);
        _fileLength = file.Length;
        _openEndCluster = _geo.ClustersIn(_fileLength);
        FreeHint = 0;
        foreach (ulong e in _table)
        {
            if (Qcow2Entry.RefcountBlockOffset(e) is var o && o != 0)
            {
                _blockClusters.Add(o >> _geo.ClusterBits);
            }
        }
    }

    /// <summary>Whether the cluster holds refcount metadata (the table, old or new, or a block): a data write there is an allocator bug.</summary>
    public bool IsMetadata(long cluster)
    {
        long c = cluster << _geo.ClusterBits;
        return _blockClusters.Contains(cluster)
            || (c >= _tableOffset && c < _tableOffset + (TableClusters << _geo.ClusterBits))
            || (_oldTable is { } old && c >= old.Offset && c < old.Offset + (old.Clusters << _geo.ClusterBits));
    }

    /// <summary>Sets a cluster's refcount outright (a repair setting stored counts to the references counted).</summary>
    public void Set(long cluster, ulong value)
    {
        if (value > _max)
        {
            throw new CorruptImageException(_file.Path, $"cluster {cluster} is referenced {value} times, more than {_max}");
        }

        EnsureBlocks(cluster, 1);
        Block block = FindBlock(cluster >> _geo.RefcountBlockBits)!;
        long index = cluster & (_geo.RefcountBlockEntries - 1);
        RefcountBlock.Set(block.Data, index, _geo.RefcountOrder, value);
        int bit = (int)(index << _geo.RefcountOrder);
        block.MarkDirty(bit >> 3, ((bit + (1 << _geo.RefcountOrder) - 1) >> 3) + 1);
        if (value == 0)
        {
            FreeHint = Math.Min(FreeHint, cluster);
        }
    }

    /// <summary>Drops clusters that were allocated but never linked (an allocating write failed): nothing on disk can point to them.</summary>
    public void FreeUnlinked(long offset, long count)
    {
        for (long c = offset >> _geo.ClusterBits; c < (offset >> _geo.ClusterBits) + count; c++)
        {
            Change(c, -1);
            FreeHint = Math.Min(FreeHint, c);
        }
    }

    /// <summary>Cuts free clusters off the end of the file, so discarding and rewriting does not grow it.</summary>
    public void TrimFile()
    {
        long end = _geo.ClustersIn(_fileLength);
        while (end > 1 && Get(end - 1) == 0 && (end - 1 >= _openEndCluster || _touched.Contains(end - 1)))
        {
            end--;
        }

        if ((end << _geo.ClusterBits) < _fileLength)
        {
            _file.SetLength(end << _geo.ClusterBits);
            _fileLength = end << _geo.ClusterBits;
            FreeHint = Math.Min(FreeHint, end);
        }
    }

    /// <summary>The first cluster that may be free: searches start here.</summary>
    public long FreeHint { get; private set; }

    public long TableOffset => _tableOffset;

    public long TableClusters => ((long)_table.Length * sizeof(ulong)) >> _geo.ClusterBits;

    /// <summary>Metadata changed in memory and not yet written.</summary>
    public bool IsDirty => _tableMoved || _tableDirtyEnd > 0 || _blocks.Values.Any(b => b.IsDirty);

    public bool HasDeferredFrees => _deferredFrees.Count > 0;

    public ulong Get(long cluster)
    {
        Block? block = FindBlock(cluster >> _geo.RefcountBlockBits);
        return block is null ? 0 : RefcountBlock.Get(block.Data, cluster & (_geo.RefcountBlockEntries - 1), _geo.RefcountOrder);
    }

    /// <summary>
    /// Allocates <paramref name="count"/> contiguous clusters with refcount 1 and makes sure the
    /// file covers them; returns the host offset of the first.
    /// </summary>
    public long Allocate(long count)
    {
        while (true)
        {
            long start = FindFreeRun(FreeHint, count, out long firstFree);
            if (EnsureBlocks(start, count))
            {
                continue; // a new refcount block took a cluster: search again
            }

            for (long c = start; c < start + count; c++)
            {
                Change(c, +1);
            }

            FreeHint = firstFree == start ? start + count : firstFree;

            GrowFile((start + count) << _geo.ClusterBits);
            return start << _geo.ClusterBits;
        }
    }

    /// <summary>Adds one reference to clusters already in use (a snapshot sharing them).</summary>
    public void AddReference(long offset, long length)
    {
        for (long c = offset >> _geo.ClusterBits; c <= (offset + length - 1) >> _geo.ClusterBits; c++)
        {
            EnsureBlocks(c, 1);
            Change(c, +1);
        }
    }

    /// <summary>Drops one reference from every cluster [offset, offset+length) touches, once the caller's next write-back has made the unlinking durable.</summary>
    public void DeferFree(long offset, long length, long stamp)
    {
        long first = offset >> _geo.ClusterBits;
        long count = ((offset + length - 1) >> _geo.ClusterBits) - first + 1;
        _deferredFrees.Add((first, count, stamp));
        DeferredFreeBytes += count << _geo.ClusterBits;
    }

    /// <summary>Bytes of clusters waiting for a write-back before they can be reused.</summary>
    public long DeferredFreeBytes { get; private set; }

    /// <summary>
    /// Applies the first <paramref name="count"/> deferred frees (their unlinking is durable
    /// now), stopping at the first whose clusters host I/O may still be using (<paramref name="settled"/>).
    /// </summary>
    public void ApplyDeferredFrees(int count, Func<long, bool> settled)
    {
        int applied = 0;
        foreach (var (cluster, n, stamp) in _deferredFrees.Take(count))
        {
            if (!settled(stamp))
            {
                break;
            }

            applied++;
            DeferredFreeBytes -= n << _geo.ClusterBits;
            for (long c = cluster; c < cluster + n; c++)
            {
                if (Change(c, -1) == 0)
                {
                    FreeHint = Math.Min(FreeHint, c);
                }
            }
        }

        _deferredFrees.RemoveRange(0, applied);
    }

    public int DeferredFreeCount => _deferredFrees.Count;

    /// <summary>
    /// The refcount writes of one flush pass, in their order: new and changed refcount blocks;
    /// then the refcount table (a moved table whole); then, if it moved, the header fields that
    /// point to it. Marks everything clean: a failure latches the image failed.
    /// </summary>
    public (List<MetadataWrite> Blocks, List<MetadataWrite> Table, MetadataWrite? Header) TakeWrites()
    {
        var blocks = new List<MetadataWrite>();
        foreach (Block b in _blocks.Values.Where(b => b.IsDirty))
        {
            int first = b.IsNew ? 0 : b.DirtyFirst / TableCodec.SectorSize * TableCodec.SectorSize;
            int end = b.IsNew ? b.Data.Length : Math.Min(b.Data.Length, (b.DirtyEnd + TableCodec.SectorSize - 1) / TableCodec.SectorSize * TableCodec.SectorSize);
            blocks.Add(new MetadataWrite(b.Offset + first, b.Data.AsSpan(first, end - first).ToArray(), b.IsNew ? IoEvent.RefblockAlloc : IoEvent.RefblockUpdate));
            b.IsNew = false;
            b.DirtyFirst = int.MaxValue;
            b.DirtyEnd = 0;
        }

        var table = new List<MetadataWrite>();
        MetadataWrite? header = null;
        if (_tableMoved)
        {
            table.Add(new MetadataWrite(_tableOffset, TableCodec.BigEndian.Encode(_table, 0, _table.Length), IoEvent.ReftableGrow));
            byte[] fields = new byte[12];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(fields, (ulong)_tableOffset);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(8), (uint)TableClusters);
            header = new MetadataWrite(48, fields, IoEvent.HeaderUpdate);
            _tableMoved = false;
        }
        else if (_tableDirtyEnd > 0)
        {
            var (first, count) = TableCodec.SectorRange(_tableDirtyFirst, _tableDirtyEnd - 1, _table.Length);
            table.Add(new MetadataWrite(_tableOffset + first * sizeof(ulong), TableCodec.BigEndian.Encode(_table, first, count), IoEvent.ReftableUpdate));
        }

        _tableDirtyFirst = int.MaxValue;
        _tableDirtyEnd = 0;
        return (blocks, table, header);
    }

    /// <summary>After the header points to a moved table: the old table's clusters are freed by the next pass.</summary>
    public void ReleaseOldTable()
    {
        if (_oldTable is { } old)
        {
            DeferFree(old.Offset, old.Clusters << _geo.ClusterBits, 0);
            _oldTable = null;
        }
    }

    /// <summary>The first run of <paramref name="count"/> free clusters at or after <paramref name="from"/>, and the first free cluster seen on the way.</summary>
    private long FindFreeRun(long from, long count, out long firstFree)
    {
        long start = from;
        firstFree = -1;
        for (long c = from; c < start + count; c++)
        {
            if (Get(c) != 0)
            {
                start = c + 1;
            }
            else if (firstFree < 0)
            {
                firstFree = c;
            }
        }

        return start;
    }

    /// <summary>Creates the refcount blocks the range needs; true if it created one (which took a cluster).</summary>
    private bool EnsureBlocks(long start, long count)
    {
        bool created = false;
        for (long index = start >> _geo.RefcountBlockBits; index <= (start + count - 1) >> _geo.RefcountBlockBits; index++)
        {
            if (FindBlock(index) is null)
            {
                CreateBlock(index);
                created = true;
            }
        }

        return created;
    }

    /// <summary>
    /// A new refcount block for a range with none: every cluster of the range is free, so the
    /// block takes the first one and counts itself.
    /// </summary>
    private void CreateBlock(long index)
    {
        if (index >= _table.Length)
        {
            GrowTable(index + 1);
            if (FindBlock(index) is not null)
            {
                return; // placing the larger table created this block already
            }
        }

        long cluster = index << _geo.RefcountBlockBits;
        var block = new Block { Offset = cluster << _geo.ClusterBits, Data = new byte[_geo.ClusterSize], IsNew = true };
        _blocks[index] = block;
        _blockClusters.Add(cluster);
        RefcountBlock.Set(block.Data, 0, _geo.RefcountOrder, 1);
        _table[index] = (ulong)block.Offset;
        MarkTableDirty((int)index);
        GrowFile(block.Offset + _geo.ClusterSize);
        if (FreeHint == cluster)
        {
            FreeHint++;
        }
    }

    /// <summary>
    /// Moves the refcount table to a larger copy: at least twice as large, so the clusters it
    /// takes are always described by blocks it can hold. The old table is freed once the
    /// header points to the new one.
    /// </summary>
    private void GrowTable(long minEntries)
    {
        long entriesPerCluster = _geo.ClusterSize / sizeof(ulong);
        long entries = Math.Max(minEntries, _table.Length * 2L);
        entries = (entries + entriesPerCluster - 1) / entriesPerCluster * entriesPerCluster;
        if (entries * sizeof(ulong) > Qcow2Header.MaxRefcountTableBytes)
        {
            throw new IOException($"{_file.Path}: the refcount table would exceed {Qcow2Header.MaxRefcountTableBytes >> 20} MiB (image too large for its cluster size)", 27 /* EFBIG */);
        }

        var table = new ulong[entries];
        _table.CopyTo(table, 0);
        if (_tableMoved)
        {
            // The previous copy was never written nor pointed to: give its clusters back now.
            for (long c = _tableOffset >> _geo.ClusterBits; c < (_tableOffset >> _geo.ClusterBits) + TableClusters; c++)
            {
                Change(c, -1);
                FreeHint = Math.Min(FreeHint, c);
            }
        }
        else
        {
            _oldTable = (_tableOffset, TableClusters);
        }

        _table = table;
        _tableOffset = Allocate(entries * sizeof(ulong) >> _geo.ClusterBits);
        _tableMoved = true;
    }

    private ulong Change(long cluster, int delta)
    {
        Block block = FindBlock(cluster >> _geo.RefcountBlockBits)
            ?? throw new InvalidOperationException($"{_file.Path}: no refcount block for cluster {cluster}");
        long index = cluster & (_geo.RefcountBlockEntries - 1);
        ulong value = RefcountBlock.Get(block.Data, index, _geo.RefcountOrder);
        if ((delta < 0 && value == 0) || (delta > 0 && value == _max))
        {
            throw new CorruptImageException(_file.Path,
                $"refcount of cluster {cluster} would {(delta < 0 ? "drop below 0" : $"exceed {_max}")}");
        }

        value = delta > 0 ? value + 1 : value - 1;
        if (value == 0)
        {
            _touched.Add(cluster);
        }
        RefcountBlock.Set(block.Data, index, _geo.RefcountOrder, value);
        int bit = (int)(index << _geo.RefcountOrder);
        block.MarkDirty(bit >> 3, ((bit + (1 << _geo.RefcountOrder) - 1) >> 3) + 1);
        return value;
    }

    private Block? FindBlock(long index)
    {
        if (_blocks.TryGetValue(index, out Block? block))
        {
            return block;
        }

        if (index >= _table.Length)
        {
            return null;
        }

        long offset = Qcow2Entry.RefcountBlockOffset(_table[index]);
        if (offset == 0)
        {
            return null;
        }

        if (_geo.OffsetInCluster(offset) != 0 || offset >= _fileLength)
        {
            throw new CorruptImageException(_file.Path, $"refcount table entry {index} points to invalid refcount block offset {offset}");
        }

        block = new Block { Offset = offset, Data = new byte[_geo.ClusterSize] };
        _file.ReadExactly(offset, block.Data);
        _blocks[index] = block;
        return block;
    }

    private void MarkTableDirty(int index)
    {
        _tableDirtyFirst = Math.Min(_tableDirtyFirst, index);
        _tableDirtyEnd = Math.Max(_tableDirtyEnd, index + 1);
    }

    private void GrowFile(long end)
    {
        if (end > _fileLength)
        {
            _file.SetLength(end);
            _fileLength = end;
        }
    }
}
