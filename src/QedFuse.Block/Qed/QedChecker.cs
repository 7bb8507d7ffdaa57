using QedFuse.Block.Metadata;

namespace QedFuse.Block.Qed;

/// <summary>
/// The consistency check (QEMU's qed-check.c semantics, without its cluster-counting bug):
/// walk L1 and every L2 table; an offset that is misaligned, inside the header or past the
/// end of the file is a corruption (repair: clear the entry, so the cluster reads from the
/// backing chain again); a cluster referenced twice is a corruption nothing can repair; a
/// cluster nothing references is a leak (repair: cut trailing leaks off the file, but only
/// when no corruption remains and every table was walked: a table that could not be walked
/// may reference clusters the walk never saw).
/// </summary>
internal sealed class QedChecker
{
    private readonly HostFile _file;
    private readonly NeedCheckFlag _needCheck;
    private readonly QedGeometry _geo;
    private readonly List<string> _messages = [];
    private readonly SparseBitSet _used = new();
    private long _clusters;
    private bool _tableSkipped;
    private long _validLimit;
    private long _corruptions;
    private long _corruptionsFixed;
    private long _checkErrors;
    private long _allocated;

    public QedChecker(HostFile file, NeedCheckFlag needCheck, QedGeometry geo)
    {
        _file = file;
        _needCheck = needCheck;
        _geo = geo;
    }

    /// <summary>Checks the on-disk tables; <paramref name="l1"/> is the L1 table as read from disk and is repaired in place.</summary>
    public CheckResult Run(ulong[] l1, CheckRepair repair, WorkProgress? progress = null)
    {
        if (progress is not null)
        {
            progress.Total = l1.Length;
        }

        bool fixCorruptions = repair == CheckRepair.All;
        long fileLength = _file.Length;
        _validLimit = fileLength / _geo.ClusterSize * _geo.ClusterSize;
        long clusters = _validLimit / _geo.ClusterSize;
        _clusters = clusters;

        long l1Offset = (long)_needCheck.Header.L1TableOffset;
        MarkUsed(l1Offset, _geo.TableBytes / _geo.ClusterSize, "L1 table");
        bool l1Changed = false;
        var l2 = new ulong[_geo.TableEntries];
        for (int i = 0; i < l1.Length; i++)
        {
            progress?.Add(1);
            ulong entry = l1[i];
            if (entry == 0)
            {
                continue;
            }

            if (!IsValidTableOffset(entry))
            {
                Corrupt($"L1 entry {i} points to invalid L2 table offset {entry}", fixCorruptions);
                if (fixCorruptions)
                {
                    l1[i] = 0;
                    l1Changed = true;
                }

                continue;
            }

            if (!MarkUsed((long)entry, _geo.TableBytes / _geo.ClusterSize, $"L2 table {i}"))
            {
                _tableSkipped = true;
                continue;
            }

            if (CheckL2Table(i, (long)entry, l2, fixCorruptions))
            {
                TryWrite((long)entry, TableCodec.LittleEndian.Encode(l2, 0, l2.Length), $"L2 table {i}", IoEvent.L2Update);
            }
        }

        if (l1Changed)
        {
            TryWrite(l1Offset, TableCodec.LittleEndian.Encode(l1, 0, l1.Length), "L1 table", IoEvent.L1Update);
        }

        long headerClusters = _geo.HeaderBytes / _geo.ClusterSize;
        long leaks = Math.Max(0, clusters - headerClusters) - _used.CountInRange(headerClusters, clusters);
        long lastUsed = Math.Max(headerClusters - 1, _used.Max);

        long leaksFixed = 0;
        if (repair != CheckRepair.None && _corruptions == 0 && _checkErrors == 0 && !_tableSkipped && (fileLength > (lastUsed + 1) * _geo.ClusterSize))
        {
            // Clusters past the last referenced one are leaks QED can give back: cut them off.
            leaksFixed = clusters - 1 - lastUsed;
            _file.SetLength((lastUsed + 1) * _geo.ClusterSize);
            _file.Sync();
            leaks -= leaksFixed;
        }

        if (leaks > 0)
        {
            _messages.Add($"{leaks} leaked clusters (allocated in the file, referenced by no table)");
        }

        if (repair != CheckRepair.None && _corruptions == 0 && _checkErrors == 0)
        {
            _needCheck.Clear();
        }

        return new CheckResult
        {
            Filename = _file.Path,
            Format = QedFormat.FormatName,
            TotalClusters = _geo.ClustersIn(_geo.VirtualSize),
            AllocatedClusters = _allocated,
            Corruptions = _corruptions,
            CorruptionsFixed = _corruptionsFixed,
            Leaks = leaks,
            LeaksFixed = leaksFixed,
            CheckErrors = _checkErrors,
            ImageEndOffset = _file.Length,
            Messages = _messages,
        };
    }

    /// <summary>Checks one L2 table into <paramref name="l2"/>; true when it was repaired and must be written back.</summary>
    private bool CheckL2Table(int l1Index, long offset, ulong[] l2, bool fix)
    {
        try
        {
            TableCodec.LittleEndian.Read(_file, offset, l2);
        }
        catch (IOException e)
        {
            _checkErrors++;
            _messages.Add($"cannot read L2 table {l1Index} at {offset}: {e.Message}");
            return false;
        }

        bool changed = false;
        for (int j = 0; j < l2.Length; j++)
        {
            ulong entry = l2[j];
            if (entry is 0 or QedFormat.ZeroClusterEntry)
            {
                continue;
            }

            // Like qemu-img check, "allocated" counts every entry that claims a data cluster,
            // whether or not the offset turns out valid or shared.
            _allocated++;
            long virtualOffset = ((long)l1Index * _geo.TableEntries + j) << _geo.ClusterBits;
            if (!IsValidDataOffset(entry))
            {
                Corrupt($"L2 entry for virtual offset {virtualOffset} holds invalid cluster offset {entry}", fix);
                if (fix)
                {
                    l2[j] = 0;
                    changed = true;
                }

                continue;
            }

            MarkUsed((long)entry, 1, $"data cluster for virtual offset {virtualOffset}");
        }

        return changed;
    }

    private void Corrupt(string what, bool fixing)
    {
        _messages.Add(fixing ? $"repaired: {what}" : $"corruption: {what}");
        if (fixing)
        {
            _corruptionsFixed++;
        }
        else
        {
            _corruptions++;
        }
    }

    /// <summary>Marks clusters referenced; a cluster referenced twice is an unrepairable corruption.</summary>
    private bool MarkUsed(long offset, long count, string what)
    {
        bool ok = true;
        for (long c = offset / _geo.ClusterSize; c < offset / _geo.ClusterSize + count; c++)
        {
            if (c >= _clusters)
            {
                continue;
            }

            if (!_used.Add(c))
            {
                _corruptions++;
                _messages.Add($"corruption: cluster at {c * _geo.ClusterSize} referenced twice (again by the {what})");
                ok = false;
            }
        }

        return ok;
    }

    private void TryWrite(long offset, byte[] bytes, string what, IoEvent ioEvent)
    {
        try
        {
            _file.Write(offset, bytes, ioEvent);
            _file.Sync();
        }
        catch (IOException e)
        {
            _checkErrors++;
            _messages.Add($"cannot write repaired {what}: {e.Message}");
        }
    }

    private bool IsValidDataOffset(ulong offset) =>
        (offset & (ulong)(_geo.ClusterSize - 1)) == 0 && offset >= (ulong)_geo.HeaderBytes && offset < (ulong)_validLimit;

    private bool IsValidTableOffset(ulong offset) =>
        IsValidDataOffset(offset) && offset + (ulong)_geo.TableBytes - (ulong)_geo.ClusterSize < (ulong)_validLimit;
}
