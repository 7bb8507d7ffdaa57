namespace QedFuse.Block.Check;

/// <summary>
/// How many times each host cluster is referenced, as a consistency check counts them while it
/// walks the metadata. Sparse (chunks are allocated where references fall), so a hostile
/// offset near 2^63 or a huge sparse file costs nothing; counts saturate instead of wrapping.
/// </summary>
internal sealed class ClusterReferences
{
    private const int ChunkBits = 14;
    private const int ChunkSize = 1 << ChunkBits;

    private readonly int _clusterBits;
    private readonly Dictionary<long, uint[]> _chunks = [];

    public ClusterReferences(int clusterBits) => _clusterBits = clusterBits;

    /// <summary>One past the highest cluster referenced so far (0 when none).</summary>
    public long End { get; private set; }

    /// <summary>Counts one reference to every cluster that [offset, offset + length) touches.</summary>
    public void Add(long offset, long length)
    {
        if (length <= 0 || offset < 0)
        {
            return;
        }

        long first = offset >> _clusterBits;
        long last = (long)(((ulong)offset + (ulong)length - 1) >> _clusterBits);
        for (long c = first; c <= last; c++)
        {
            AddCluster(c);
        }
    }

    public void AddCluster(long cluster)
    {
        if (!_chunks.TryGetValue(cluster >> ChunkBits, out uint[]? chunk))
        {
            chunk = new uint[ChunkSize];
            _chunks.Add(cluster >> ChunkBits, chunk);
        }

        ref uint count = ref chunk[cluster & (ChunkSize - 1)];
        if (count != uint.MaxValue)
        {
            count++;
        }

        End = Math.Max(End, cluster + 1);
    }

    /// <summary>The referenced clusters at or after <paramref name="start"/>, in order; visits only chunks that hold references.</summary>
    public IEnumerable<long> ReferencedFrom(long start)
    {
        foreach (long key in _chunks.Keys.Where(k => ((k + 1) << ChunkBits) > start).Order())
        {
            uint[] chunk = _chunks[key];
            for (int i = 0; i < ChunkSize; i++)
            {
                long cluster = (key << ChunkBits) + i;
                if (chunk[i] != 0 && cluster >= start)
                {
                    yield return cluster;
                }
            }
        }
    }

    public ulong Get(long cluster) =>
        _chunks.TryGetValue(cluster >> ChunkBits, out uint[]? chunk) ? chunk[cluster & (ChunkSize - 1)] : 0;
}
