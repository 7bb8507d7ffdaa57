namespace QedFuse.Block.Qed;

/// <summary>
/// QED has no free-space map: clusters for data and tables are appended at the end of the
/// file, never reused. Allocation starts at the file length rounded up to a cluster, so a
/// freshly allocated cluster is always beyond anything ever written and reads as zeros until
/// written. Guarded by the metadata lock.
/// </summary>
/// <remarks>
/// The file is grown here, under the lock, in steps ahead of the allocations (an eighth of the
/// file, 1 to 128 MiB): growing it later (in the flusher, say) would race with data writes
/// already landing past the old end. It is shrunk only back to <see cref="End"/>, the end of
/// the last allocated cluster (<see cref="TrimFile"/>, every flush pass), so no written data
/// is ever cut off. A crash leaves the unused tail of the last step as leaked clusters,
/// which repair cuts off. Need-check is set (durably) before the file grows, so that the
/// tail of a crash is always repaired at the next open.
/// </remarks>
internal sealed class ClusterAllocator
{
    private readonly HostFile _file;
    private readonly long _clusterSize;
    private readonly NeedCheckFlag _needCheck;
    private const long MinGrowStep = 1L << 20;
    private const long MaxGrowStep = 128L << 20;
    private long _fileLength;

    public ClusterAllocator(HostFile file, long clusterSize, NeedCheckFlag needCheck)
    {
        _file = file;
        _needCheck = needCheck;
        _clusterSize = clusterSize;
        _fileLength = file.Length;
        End = (_fileLength + clusterSize - 1) / clusterSize * clusterSize;
        ValidLimit = _fileLength / clusterSize * clusterSize;
    }

    /// <summary>Where the next cluster goes; every cluster below it lies inside the file.</summary>
    public long End { get; private set; }

    /// <summary>Offsets below this (and past the header) are valid cluster offsets (QEMU: file size rounded down).</summary>
    public long ValidLimit { get; private set; }

    /// <summary>Reserves clusters; when the file cannot grow (ENOSPC) it throws and nothing changes.</summary>
    public long Allocate(long clusters)
    {
        long at = End;
        long end = End + clusters * _clusterSize;
        if (end > _fileLength)
        {
            // Grow ahead by an eighth of the file (1..128 MiB): few ftruncates for a streaming
            // writer, a bounded tail for repair to cut off after a crash.
            long step = Math.Clamp(_fileLength / 8, Math.Max(MinGrowStep, _clusterSize), Math.Max(MaxGrowStep, _clusterSize));
            long target = Math.Max(end, (_fileLength + step) / _clusterSize * _clusterSize);
            _needCheck.Set();
            _file.SetLength(target);
            _fileLength = target;
        }

        End = end;
        ValidLimit = end;
        return at;
    }

    /// <summary>Cuts the file back to the last allocated cluster (nothing is ever written past it); true when it did.</summary>
    public bool TrimFile()
    {
        if (_fileLength <= End)
        {
            return false;
        }

        _file.SetLength(End);
        _fileLength = End;
        return true;
    }
}
