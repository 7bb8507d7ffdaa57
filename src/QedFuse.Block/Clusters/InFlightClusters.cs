using QedFuse.Block.Metadata;

namespace QedFuse.Block.Clusters;

/// <summary>
/// Virtual clusters with an allocation in flight (data being written, entry not yet linked).
/// One allocation per cluster: a request that needs a cluster in this set waits on the
/// metadata gate until the allocation commits or aborts, then looks again (and usually
/// writes in place). Guarded by the gate.
/// </summary>
internal sealed class InFlightClusters
{
    private readonly MetadataGate _gate;
    private readonly HashSet<long> _clusters = [];

    public InFlightClusters(MetadataGate gate) => _gate = gate;

    /// <summary>Allocations (not clusters) in flight.</summary>
    public int Allocations { get; private set; }

    public bool Contains(long cluster) => _clusters.Count > 0 && _clusters.Contains(cluster);

    /// <summary>The first cluster of (first, last] that is in flight, or -1: where a new allocation starting at <paramref name="first"/> must stop.</summary>
    public long FirstAfter(long first, long last)
    {
        if (_clusters.Count == 0)
        {
            return -1;
        }

        for (long c = first + 1; c <= last; c++)
        {
            if (_clusters.Contains(c))
            {
                return c;
            }
        }

        return -1;
    }

    public bool Any(long first, long count)
    {
        if (_clusters.Count == 0)
        {
            return false;
        }

        for (long c = first; c < first + count; c++)
        {
            if (_clusters.Contains(c))
            {
                return true;
            }
        }

        return false;
    }

    public void Add(long first, long count)
    {
        for (long c = first; c < first + count; c++)
        {
            _clusters.Add(c);
        }

        Allocations++;
    }

    public void Remove(long first, long count)
    {
        for (long c = first; c < first + count; c++)
        {
            _clusters.Remove(c);
        }

        Allocations--;
        _gate.WakeLocked();
    }
}
