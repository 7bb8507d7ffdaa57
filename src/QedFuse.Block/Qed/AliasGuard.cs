namespace QedFuse.Block.Qed;

/// <summary>
/// Which table entries the request path may trust beyond "aligned and inside the file".
/// A cluster a table entry shares with metadata or with another entry, or an entry that
/// pointed past the end of the file when the image was opened (the file grows later, and
/// the entry would then alias a fresh allocation), is corrupt: reads and writes through it
/// fail with EIO instead of overwriting a table or another cluster's data.
/// Guarded by the metadata lock.
/// </summary>
/// <remarks>
/// Metadata is known whole from L1 at open. Data clusters are learned table by table, when a
/// table is first read: a write through an entry whose twin sits in a table not read yet is
/// not caught, but the twin is caught when its table is read, and from then on both fail.
/// Entries this session writes point at fresh clusters past the open-time end, which no
/// trusted entry can reference, so they need no tracking.
/// </remarks>
internal sealed class AliasGuard
{
    private readonly QedGeometry _geo;
    private readonly long _openLimit;
    private readonly Dictionary<long, int> _metadata = []; // host cluster -> L1 index of its table, -1 for L1 itself
    private readonly HashSet<int> _badTables = [];
    private readonly HashSet<long> _registeredTables = [];
    private readonly SparseBitSet _dataClusters = new();
    private readonly SparseBitSet _shared = new();
    private readonly SparseBitSet _pastOpenEnd = new(); // virtual clusters

    public AliasGuard(QedGeometry geo, ulong[] l1, long l1Offset, long validLimit)
    {
        _geo = geo;
        _openLimit = validLimit;
        long tableClusters = geo.TableBytes >> geo.ClusterBits;
        Claim(l1Offset, tableClusters, -1);
        for (int i = 0; i < l1.Length; i++)
        {
            ulong entry = l1[i];
            if (entry == 0)
            {
                continue;
            }

            if (!IsValidTableOffset(entry))
            {
                _badTables.Add(i);
                continue;
            }

            Claim((long)entry, tableClusters, i);
        }
    }

    /// <summary>Why the L2 table of L1 entry <paramref name="l1Index"/> cannot be trusted, or null.</summary>
    public string? TableProblem(int l1Index) =>
        _badTables.Contains(l1Index) ? "overlaps the header, the L1 table or another L2 table, or lies past the end of the file" : null;

    /// <summary>Records a table this session created: its entries are all its own.</summary>
    public void AddNewTable(long hostOffset) => _registeredTables.Add(hostOffset);

    /// <summary>Learns the data clusters of a table read from disk, the first time it is read.</summary>
    public void RegisterTable(long hostOffset, int l1Index, ulong[] entries)
    {
        if (!_registeredTables.Add(hostOffset))
        {
            return;
        }

        for (int j = 0; j < entries.Length; j++)
        {
            ulong entry = entries[j];
            if (entry is 0 or QedFormat.ZeroClusterEntry || !IsAlignedPastHeader(entry))
            {
                continue;
            }

            if (entry >= (ulong)_openLimit)
            {
                _pastOpenEnd.Add(((long)l1Index << _geo.L2Bits) + j);
            }
            else if (!_metadata.ContainsKey((long)entry >> _geo.ClusterBits) && !_dataClusters.Add((long)entry >> _geo.ClusterBits))
            {
                _shared.Add((long)entry >> _geo.ClusterBits);
            }
        }
    }

    /// <summary>Why the data entry for <paramref name="virtualCluster"/> cannot be trusted, or null.</summary>
    public string? DataProblem(ulong entry, long virtualCluster)
    {
        long host = (long)entry >> _geo.ClusterBits;
        if (_pastOpenEnd.Count > 0 && _pastOpenEnd.Contains(virtualCluster))
        {
            return "lay past the end of the file when the image was opened";
        }

        if (_metadata.TryGetValue(host, out int owner))
        {
            return owner < 0 ? "aliases the L1 table" : $"aliases the L2 table of L1 entry {owner}";
        }

        return _shared.Count > 0 && _shared.Contains(host) ? "is referenced by another L2 entry too" : null;
    }

    private void Claim(long offset, long clusters, int l1Index)
    {
        long first = offset >> _geo.ClusterBits;
        for (long c = first; c < first + clusters; c++)
        {
            if (!_metadata.TryAdd(c, l1Index))
            {
                int other = _metadata[c];
                if (other >= 0)
                {
                    _badTables.Add(other);
                }

                _badTables.Add(l1Index);
            }
        }
    }

    private bool IsAlignedPastHeader(ulong offset) =>
        (offset & (ulong)(_geo.ClusterSize - 1)) == 0 && offset >= (ulong)_geo.HeaderBytes;

    private bool IsValidTableOffset(ulong offset) =>
        IsAlignedPastHeader(offset) && offset < (ulong)_openLimit && offset + (ulong)_geo.TableBytes - (ulong)_geo.ClusterSize < (ulong)_openLimit;
}
