using System.Buffers;
using QedFuse.Block.Clusters;
using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// Maps virtual offsets through one L1 table and the cached L2 tables (QEMU's
/// qcow2-cluster.c lookups): a lookup returns a run of clusters in one state, with contiguous
/// host clusters merged. Every entry is checked before it is trusted: a table or data offset
/// that is misaligned or outside the file fails that request with EIO, and only that request.
/// </summary>
internal sealed class Qcow2ClusterMap : IClusterSource
{
    private readonly HostFile _file;
    private readonly Qcow2Geometry _geo;
    private readonly byte _compressionType;
    private readonly ulong[] _l1;
    private readonly MetadataGate _gate = new();
    private readonly TableCache _l2Cache;
    private readonly long _fileLength;
    private readonly object _decompressedLock = new();
    private readonly byte[] _decompressed;
    private ulong _decompressedEntry;

    public Qcow2ClusterMap(HostFile file, Qcow2Geometry geo, byte compressionType, ulong[] l1, int cacheTables)
    {
        _file = file;
        _geo = geo;
        _compressionType = compressionType;
        _l1 = l1;
        _fileLength = file.Length;
        _l2Cache = new TableCache(_gate, cacheTables, geo.L2Entries, (offset, entries) => TableCodec.BigEndian.Read(file, offset, entries));
        _decompressed = new byte[geo.ClusterSize];
    }

    public ClusterRun Map(long offset, long length)
    {
        long segment = Math.Min(length, _geo.BytesToTableEnd(offset));
        long l1Index = _geo.L1Index(offset);
        long l2Offset = l1Index < _l1.Length ? Qcow2Entry.L1Offset(_l1[l1Index]) : 0;
        if (l2Offset == 0)
        {
            return new ClusterRun(RunKind.Unallocated, segment);
        }

        if (!IsValidCluster(l2Offset))
        {
            throw new CorruptImageException(_file.Path,
                $"L1 entry {l1Index} (virtual offset {l1Index * _geo.L2Span}) points to invalid L2 table offset {l2Offset}");
        }

        lock (_gate.Sync)
        {
            CachedTable table = _l2Cache.GetLocked(l2Offset);
            return RunLocked(table.Entries, offset, segment);
        }
    }

    public void ReadCompressed(ulong entry, long offsetInCluster, Span<byte> destination)
    {
        lock (_decompressedLock)
        {
            if (_decompressedEntry != entry)
            {
                Decompress(entry);
                _decompressedEntry = entry;
            }

            _decompressed.AsSpan((int)offsetInCluster, destination.Length).CopyTo(destination);
        }
    }

    private void Decompress(ulong entry)
    {
        Qcow2Entry.CompressedExtent extent = Qcow2Entry.Compressed(entry, _geo);
        byte[] compressed = ArrayPool<byte>.Shared.Rent(extent.Length);
        try
        {
            _file.ReadExactly(extent.Offset, compressed.AsSpan(0, extent.Length));
            if (!ClusterCompression.TryDecompress(_compressionType, compressed, extent.Length, _decompressed))
            {
                _decompressedEntry = 0;
                throw new CorruptImageException(_file.Path,
                    $"compressed cluster at host offset {extent.Offset} ({extent.Length} bytes) does not decompress to {_geo.ClusterSize} bytes");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }

    private ClusterRun RunLocked(ulong[] entries, long offset, long segment)
    {
        int i = _geo.L2Index(offset);
        ulong head = entries[i];
        Qcow2ClusterKind kind = Qcow2Entry.Kind(head);
        long inCluster = _geo.OffsetInCluster(offset);
        long length = _geo.ClusterSize - inCluster;
        switch (kind)
        {
            case Qcow2ClusterKind.Compressed:
                Qcow2Entry.CompressedExtent extent = Qcow2Entry.Compressed(head, _geo);
                if (extent.Offset == 0 || extent.Offset >= _fileLength)
                {
                    throw Corrupt(offset, $"points to compressed data at {extent.Offset}, outside the {_fileLength}-byte file");
                }

                return new ClusterRun(RunKind.Compressed, Math.Min(length, segment), Entry: head);
            case Qcow2ClusterKind.Normal:
                long host = Qcow2Entry.StandardOffset(head);
                if (!IsValidCluster(host))
                {
                    throw Corrupt(offset, $"holds invalid cluster offset {host}");
                }

                for (int j = i + 1; length < segment && j < entries.Length; j++)
                {
                    if (Qcow2Entry.Kind(entries[j]) != Qcow2ClusterKind.Normal
                        || Qcow2Entry.StandardOffset(entries[j]) != host + (length + inCluster)
                        || !IsValidCluster(host + length + inCluster))
                    {
                        break;
                    }

                    length += _geo.ClusterSize;
                }

                return new ClusterRun(RunKind.Data, Math.Min(length, segment), host + inCluster);
            default:
                for (int j = i + 1; length < segment && j < entries.Length && SameReadKind(kind, Qcow2Entry.Kind(entries[j])); j++)
                {
                    length += _geo.ClusterSize;
                }

                return new ClusterRun(kind == Qcow2ClusterKind.Unallocated ? RunKind.Unallocated : RunKind.Zero, Math.Min(length, segment));
        }
    }

    private static bool SameReadKind(Qcow2ClusterKind a, Qcow2ClusterKind b) =>
        a == b || (a is Qcow2ClusterKind.ZeroPlain or Qcow2ClusterKind.ZeroAllocated && b is Qcow2ClusterKind.ZeroPlain or Qcow2ClusterKind.ZeroAllocated);

    private CorruptImageException Corrupt(long offset, string problem) =>
        new(_file.Path, $"L2 entry for virtual offset {_geo.ClusterStart(offset)} {problem}");

    /// <summary>A cluster offset a table may hold: aligned, past the header cluster, inside the file.</summary>
    private bool IsValidCluster(long hostOffset) =>
        (hostOffset & (_geo.ClusterSize - 1)) == 0 && hostOffset >= _geo.ClusterSize && hostOffset < _fileLength;
}
