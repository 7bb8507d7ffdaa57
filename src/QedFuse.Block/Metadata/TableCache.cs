namespace QedFuse.Block.Metadata;

/// <summary>
/// A bounded LRU of metadata tables keyed by host offset, with single-flight loading: the
/// first request for a table reads it with the gate released while later ones wait for that
/// read instead of issuing their own. Dirty, pinned or loading tables are never evicted, so
/// the cache may briefly hold more than its capacity; <see cref="OverCapacity"/> tells the
/// owner to flush. Every member is called with the gate held.
/// </summary>
internal sealed class TableCache
{
    private readonly MetadataGate _gate;
    private readonly string _path;
    private readonly int _entries;
    private readonly Action<long, ulong[]> _read;
    private readonly MetadataStatistics? _stats;
    private readonly Dictionary<long, LinkedListNode<CachedTable>> _byOffset = [];
    private readonly LinkedList<CachedTable> _recency = new(); // most recently used first

    /// <param name="read">Reads a table's entries from its host offset; called with the gate released.</param>
    public TableCache(MetadataGate gate, string path, int capacity, int entriesPerTable, Action<long, ulong[]> read, MetadataStatistics? stats = null)
    {
        _stats = stats;
        _gate = gate;
        _path = path;
        Capacity = Math.Max(1, capacity);
        _entries = entriesPerTable;
        _read = read;
    }

    public int Capacity { get; }

    public bool OverCapacity => _byOffset.Count > Capacity;

    public IEnumerable<CachedTable> Tables => _recency;

    /// <summary>
    /// The table at <paramref name="hostOffset"/>, loaded from disk if it is not cached;
    /// <paramref name="loaded"/> sees a freshly loaded table once, under the gate, before anyone uses it.
    /// </summary>
    public CachedTable GetLocked(long hostOffset, Action<CachedTable>? loaded = null)
    {
        while (_byOffset.TryGetValue(hostOffset, out var node))
        {
            if (!node.Value.Loading)
            {
                Touch(node);
                if (_stats is not null)
                {
                    _stats.CacheHits++;
                }

                return node.Value;
            }

            _gate.WaitLocked();
        }

        var table = new CachedTable(hostOffset, _entries, isNew: false);
        Add(table);
        if (_stats is not null)
        {
            _stats.CacheMisses++;
        }

        Exception? failure = null;
        _gate.RunUnlocked(() =>
        {
            try
            {
                _read(hostOffset, table.Entries);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        table.Loading = false;
        if (failure is not null)
        {
            Remove(table);
        }
        else
        {
            loaded?.Invoke(table);
        }

        _gate.WakeLocked();
        return failure is null ? table : throw new IOException($"{_path}: cannot read the table at {hostOffset}: {failure.Message}", failure);
    }

    /// <summary>Caches a table that exists only in memory so far (all entries zero).</summary>
    public CachedTable AddNewLocked(long hostOffset)
    {
        var table = new CachedTable(hostOffset, _entries, isNew: true);
        Add(table);
        return table;
    }

    /// <summary>Drops every table that is clean and unused (metadata changed on disk underneath a read-only open).</summary>
    public void DropCleanLocked()
    {
        foreach (CachedTable t in _recency.Where(t => t.Evictable).ToList())
        {
            Remove(t);
        }
    }

    /// <summary>Evicts least recently used tables that are clean and unused until the cache fits, if it can.</summary>
    public void EvictDownToCapacity()
    {
        for (var node = _recency.Last; _byOffset.Count > Capacity && node is not null;)
        {
            var previous = node.Previous;
            if (node.Value.Evictable)
            {
                Remove(node.Value);
                if (_stats is not null)
                {
                    _stats.CacheEvictions++;
                }
            }

            node = previous;
        }
    }

    private void Add(CachedTable table)
    {
        _byOffset.Add(table.HostOffset, _recency.AddFirst(table));
        EvictDownToCapacity();
    }

    private void Remove(CachedTable table)
    {
        if (_byOffset.Remove(table.HostOffset, out var node))
        {
            _recency.Remove(node);
        }
    }

    private void Touch(LinkedListNode<CachedTable> node)
    {
        if (node != _recency.First)
        {
            _recency.Remove(node);
            _recency.AddFirst(node);
        }
    }
}
