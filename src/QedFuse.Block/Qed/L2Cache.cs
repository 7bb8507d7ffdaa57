namespace QedFuse.Block.Qed;

/// <summary>
/// A bounded LRU of L2 tables keyed by their host offset (QEMU's qed-l2-cache.c). Dirty,
/// pinned or loading tables are never evicted, so the cache may briefly hold more than its
/// capacity; <see cref="OverCapacity"/> tells the caller to flush. Not thread-safe: every
/// call happens under the image's metadata lock.
/// </summary>
internal sealed class L2Cache
{
    private readonly Dictionary<long, LinkedListNode<L2Table>> _tables = [];
    private readonly LinkedList<L2Table> _lru = new(); // most recently used first

    public L2Cache(int capacity) => Capacity = Math.Max(1, capacity);

    public int Capacity { get; }

    public bool OverCapacity => _tables.Count > Capacity;

    public IEnumerable<L2Table> Tables => _lru;

    public L2Table? Find(long hostOffset)
    {
        if (!_tables.TryGetValue(hostOffset, out var node))
        {
            return null;
        }

        if (node != _lru.First)
        {
            _lru.Remove(node);
            _lru.AddFirst(node);
        }

        return node.Value;
    }

    public void Insert(L2Table table)
    {
        _tables.Add(table.HostOffset, _lru.AddFirst(table));
        EvictDownToCapacity();
    }

    public void Remove(L2Table table)
    {
        if (_tables.Remove(table.HostOffset, out var node))
        {
            _lru.Remove(node);
        }
    }

    /// <summary>Evicts least recently used tables that are clean and unused until the cache fits, if it can.</summary>
    public void EvictDownToCapacity()
    {
        var node = _lru.Last;
        while (_tables.Count > Capacity && node is not null)
        {
            var previous = node.Previous;
            if (node.Value.Evictable)
            {
                _lru.Remove(node);
                _tables.Remove(node.Value.HostOffset);
            }

            node = previous;
        }
    }
}
