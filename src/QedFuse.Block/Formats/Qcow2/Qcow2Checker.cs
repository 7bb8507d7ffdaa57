using QedFuse.Block.Check;
using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// The consistency check with qemu-img check's semantics for qcow2: count every reference
/// (header, active and snapshot L1 tables, their L2 tables and data or compressed clusters,
/// the snapshot table, the refcount table and blocks), compare with the stored refcounts
/// (stored above counted: a leak; below: a corruption), and check that the copied flags of
/// the active tables agree with refcount 1. Counts fragmentation as qemu-img does. Reads only.
/// </summary>
internal sealed class Qcow2Checker
{
    private readonly HostFile _file;
    private readonly Qcow2Layout _layout;
    private readonly Qcow2Geometry _geo;
    private readonly ClusterReferences _refs;
    private readonly List<string> _messages = [];
    private readonly StoredRefcounts _stored;
    private long _corruptions;
    private long _leaks;
    private long _checkErrors;
    private long _allocated;
    private long _fragmented;
    private long _compressed;

    public Qcow2Checker(HostFile file, Qcow2Layout layout)
    {
        _file = file;
        _layout = layout;
        _geo = layout.Geometry;
        _refs = new ClusterReferences(_geo.ClusterBits);
        _stored = new StoredRefcounts(file, layout);
    }

    /// <summary>Clusters whose stored refcount differs from the references counted, after <see cref="Run"/>: what a repair sets right.</summary>
    public List<(long Cluster, ulong Stored, ulong Counted)> Mismatches { get; } = [];

    /// <summary>Whether the refcount structure itself is damaged (a block misaligned or outside the file): not repairable by setting counts.</summary>
    public bool RefcountStructureDamaged { get; private set; }

    public CheckResult Run()
    {
        Qcow2Header h = _layout.Header;
        long fileClusters = _geo.ClustersIn(_file.Length);
        _refs.Add(0, _geo.ClusterSize);
        CountL1((long)h.L1TableOffset, h.L1Size, fragmentation: true);
        foreach (Qcow2Snapshot s in _layout.Snapshots)
        {
            CountL1(s.L1TableOffset, s.L1Size, fragmentation: false);
        }

        _refs.Add((long)h.SnapshotsOffset, _layout.SnapshotTableBytes);
        _refs.Add((long)h.RefcountTableOffset, (long)h.RefcountTableClusters << _geo.ClusterBits);
        CountRefcountBlocks(fileClusters);

        // Every cluster of the file, then the referenced ones past its end (sparse: a hostile entry may point near 2^56).
        long highest = 0;
        foreach (long c in Sequence(0, fileClusters).Concat(_refs.ReferencedFrom(fileClusters)))
        {
            ulong counted = _refs.Get(c);
            ulong? stored = _stored.Get(c);
            if (stored is null)
            {
                _checkErrors++;
                _messages.Add($"Can't get refcount for cluster {c}: refcount block not cluster aligned");
                continue;
            }

            if (stored > 0 || counted > 0)
            {
                highest = c;
            }

            if (stored < counted)
            {
                _corruptions++;
                _messages.Add($"ERROR cluster {c} refcount={stored} reference={counted}");
                Mismatches.Add((c, stored.Value, counted));
            }
            else if (stored > counted)
            {
                _leaks++;
                _messages.Add($"Leaked cluster {c} refcount={stored} reference={counted}");
                Mismatches.Add((c, stored.Value, counted));
            }
        }

        CheckCopiedFlags();
        return new CheckResult
        {
            Filename = _file.Path,
            Format = Qcow2Format.FormatName,
            TotalClusters = _geo.ClustersIn(_geo.VirtualSize),
            AllocatedClusters = _allocated,
            FragmentedClusters = _fragmented,
            CompressedClusters = _compressed,
            Corruptions = _corruptions,
            Leaks = _leaks,
            CheckErrors = _checkErrors,
            ImageEndOffset = (highest + 1) << _geo.ClusterBits,
            Messages = _messages,
        };
    }

    private static IEnumerable<long> Sequence(long start, long end)
    {
        for (long c = start; c < end; c++)
        {
            yield return c;
        }
    }

    private void CountL1(long l1Offset, uint l1Size, bool fragmentation)
    {
        _refs.Add(l1Offset, (long)l1Size * sizeof(ulong));
        var l1 = new ulong[l1Size];
        TableCodec.BigEndian.Read(_file, l1Offset, l1);
        var l2 = new ulong[_geo.L2Entries];
        foreach (ulong entry in l1)
        {
            long l2Offset = Qcow2Entry.L1Offset(entry);
            if (l2Offset == 0)
            {
                continue;
            }

            _refs.Add(l2Offset, _geo.ClusterSize);
            if (_geo.OffsetInCluster(l2Offset) != 0)
            {
                _corruptions++;
                _messages.Add($"ERROR l2_offset={l2Offset:x}: Table is not cluster aligned; L1 entry corrupted");
            }

            TableCodec.BigEndian.Read(_file, l2Offset, l2);
            CountL2(l2, fragmentation);
        }
    }

    private void CountL2(ulong[] l2, bool fragmentation)
    {
        long nextContiguous = 0;
        foreach (ulong entry in l2)
        {
            switch (Qcow2Entry.Kind(entry))
            {
                case Qcow2ClusterKind.Compressed:
                    if ((entry & Qcow2Entry.Copied) != 0)
                    {
                        _corruptions++;
                        _messages.Add($"ERROR: cluster {(long)(entry & ~Qcow2Entry.Copied) >> _geo.ClusterBits}: copied flag must never be set for compressed clusters");
                    }

                    Qcow2Entry.CompressedExtent extent = Qcow2Entry.Compressed(entry & ~Qcow2Entry.Copied, _geo);
                    _refs.Add(extent.SectorStart, extent.SectorEnd - extent.SectorStart);
                    if (fragmentation)
                    {
                        _allocated++;
                        _compressed++;
                        _fragmented++; // as qemu-img counts them: compressed clusters are fragmented by nature
                    }

                    break;
                case Qcow2ClusterKind.Normal or Qcow2ClusterKind.ZeroAllocated:
                    long offset = Qcow2Entry.StandardOffset(entry);
                    if (fragmentation)
                    {
                        _allocated++;
                        if (nextContiguous != 0 && offset != nextContiguous)
                        {
                            _fragmented++;
                        }

                        nextContiguous = offset + _geo.ClusterSize;
                    }

                    _refs.Add(offset, _geo.ClusterSize);
                    if (_geo.OffsetInCluster(offset) != 0)
                    {
                        _corruptions++;
                        _messages.Add($"ERROR offset={offset:x}: Cluster is not properly aligned; L2 entry corrupted.");
                    }

                    break;
            }
        }
    }

    private void CountRefcountBlocks(long fileClusters)
    {
        for (int i = 0; i < _stored.Table.Length; i++)
        {
            long offset = Qcow2Entry.RefcountBlockOffset(_stored.Table[i]);
            long cluster = offset >> _geo.ClusterBits;
            if (_geo.OffsetInCluster(offset) != 0)
            {
                _corruptions++;
                _messages.Add($"ERROR refcount block {i} is not cluster aligned; refcount table entry corrupted");
                RefcountStructureDamaged = true;
            }
            else if (cluster >= fileClusters)
            {
                _corruptions++;
                _messages.Add($"ERROR refcount block {i} is outside image");
                RefcountStructureDamaged = true;
            }
            else if (offset != 0)
            {
                _refs.Add(offset, _geo.ClusterSize);
                if (_refs.Get(cluster) != 1)
                {
                    _corruptions++;
                    _messages.Add($"ERROR refcount block {i} refcount={_refs.Get(cluster)}");
                    RefcountStructureDamaged = true;
                }
            }
        }
    }

    /// <summary>The active tables' copied flags must say "refcount is exactly 1".</summary>
    private void CheckCopiedFlags()
    {
        var l2 = new ulong[_geo.L2Entries];
        for (int i = 0; i < _layout.L1.Length; i++)
        {
            ulong l1Entry = _layout.L1[i];
            long l2Offset = Qcow2Entry.L1Offset(l1Entry);
            if (l2Offset == 0)
            {
                continue;
            }

            if (_stored.Get(l2Offset >> _geo.ClusterBits) is { } refcount && (refcount == 1) != ((l1Entry & Qcow2Entry.Copied) != 0))
            {
                _corruptions++;
                _messages.Add($"ERROR OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={l1Entry:x} refcount={refcount}");
            }

            TableCodec.BigEndian.Read(_file, l2Offset, l2);
            foreach (ulong entry in l2)
            {
                if (Qcow2Entry.Kind(entry) is Qcow2ClusterKind.Normal or Qcow2ClusterKind.ZeroAllocated
                    && _stored.Get(Qcow2Entry.StandardOffset(entry) >> _geo.ClusterBits) is { } dataRefcount
                    && (dataRefcount == 1) != ((entry & Qcow2Entry.Copied) != 0))
                {
                    _corruptions++;
                        _messages.Add($"ERROR OFLAG_COPIED data cluster: l2_entry={entry:x} refcount={dataRefcount}");
                }
            }
        }
    }
}
