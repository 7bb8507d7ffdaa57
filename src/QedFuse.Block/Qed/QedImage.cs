using System.Buffers;
using QedFuse.Block.Clusters;
using QedFuse.Block.Native;

using QedFuse.Block.Metadata;

namespace QedFuse.Block.Qed;

/// <summary>
/// The QED request path (QEMU's qed.c read/write): requests walk the image as runs of
/// clusters in one state, each served by one host I/O. Allocating writes fill fresh clusters
/// (copy-on-write of the untouched head and tail from the backing chain), then link them;
/// the flusher writes the links back.
/// </summary>
internal sealed class QedImage : IBlockImage
{
    private readonly HostFile _file;
    private readonly int _cacheTables;
    private readonly ImageOpenOptions _options;
    private readonly MetadataStatistics _stats = new();
    private readonly object _reloadGate = new();
    private readonly ReloadableBacking _backing;

    // Replaced together by Reload (read-only images only); readers take a local copy of
    // _mapper and Backing, so one request walks one generation of the metadata.
    private QedGeometry _geo;
    private NeedCheckFlag _needCheck;
    private string? _backingName;
    private ClusterMapper _mapper;
    private MetadataFlusher _flusher;
    private bool _disposed;

    public QedImage(HostFile file, NeedCheckFlag needCheck, ulong[] l1, string? backingName, IBlockImage? backing, int cacheTables, ImageOpenOptions options)
    {
        _file = file;
        _cacheTables = cacheTables;
        _options = options;
        _geo = new QedGeometry(needCheck.Header);
        _needCheck = needCheck;
        _backingName = backingName;
        _backing = new ReloadableBacking(backing);
        _mapper = NewMapper(l1);
        _flusher = new MetadataFlusher(file, _mapper, _needCheck, _stats);
    }

    public string Path => _file.Path;

    public string FormatName => QedFormat.FormatName;

    public long VirtualSize => _geo.VirtualSize;

    public bool IsReadOnly => !_file.Writable;

    public IBlockImage? Backing => _backing.Current;

    public MetadataCounters Counters => _stats.Snapshot(_mapper.DirtyBytes);

    public long AllocatedBytes =>
        Math.Max(0, _mapper.FileEnd - _geo.HeaderBytes - (long)_geo.TableBytes * (1 + _mapper.TableCount));

    public void Read(long offset, Span<byte> buffer)
    {
        RequestBounds.CheckRead(this, offset, buffer.Length);
        // One request walks one generation of the metadata (Reload replaces both together).
        ClusterMapper mapper = _mapper;
        IBlockImage? backing = Backing;
        ClusterReader.Read(mapper, _file, backing, _geo.ClusterSize, offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        RequestBounds.CheckWrite(this, offset, data.Length);
        _file.ThrowIfFailed();
        ClusterWriter.Write(_mapper, _file, Backing, _geo.ClusterBits, offset, data);
        FlushIfCacheFull();
    }

    public void WriteZeroes(long offset, long length, bool unmap)
    {
        RequestBounds.CheckWrite(this, offset, length);
        _file.ThrowIfFailed();
        long end = offset + length;
        while (offset < end)
        {
            // Bytes to the end of this cluster, clamped to the virtual size: the cluster end
            // itself can be 2^63, which a long cannot hold.
            long inCluster = Math.Min(_geo.ClusterSize - _geo.OffsetInCluster(offset), VirtualSize - offset);
            long run = _geo.OffsetInCluster(offset) == 0 && end - offset >= inCluster
                ? ZeroWholeClusters(offset, (end == VirtualSize ? end : _geo.ClusterStart(end)) - offset, unmap)
                : ZeroPartialCluster(offset, Math.Min(end - offset, inCluster));
            offset += Advance(run, end - offset, offset);

            // A punch over an overlay dirties one table per table span: write them back as
            // the cache fills, not once for the whole range (a 16 TiB punch is 8192 tables).
            FlushIfCacheFull();
        }
    }

    public Allocation GetAllocation(long offset, long length)
    {
        RequestBounds.CheckRead(this, offset, length);
        return _mapper.Map(offset, length);
    }

    public void Flush() => _flusher.Flush();

    public void Checkpoint()
    {
        if (!IsReadOnly)
        {
            _flusher.Checkpoint();
        }
    }

    public ImageInfo GetInfo() => new()
    {
        Filename = Path,
        Format = FormatName,
        VirtualSize = VirtualSize,
        ActualSize = _file.AllocatedBytes,
        ClusterSize = _geo.ClusterSize,
        BackingFilename = _backingName,
        FullBackingFilename = _backingName is null ? null : ImageOpener.JoinBackingName(Path, _backingName),
        // QED records a backing format only as the "raw, do not probe" bit; qemu-img info prints none otherwise.
        BackingFilenameFormat = _needCheck.Header.BackingIsRaw ? "raw" : null,
        DirtyFlag = _needCheck.IsSet,
    };

    /// <summary>Checks (and repairs) the on-disk metadata; afterwards the tables are re-read from disk.</summary>
    public CheckResult Check(CheckRepair repair)
    {
        if (!IsReadOnly)
        {
            _flusher.Flush();
        }

        if (IsReadOnly && repair != CheckRepair.None)
        {
            throw new IOException($"{Path}: opened read-only, cannot repair", LibC.EROFS);
        }

        var l1 = new ulong[_geo.TableEntries];
        TableCodec.LittleEndian.Read(_file, (long)_needCheck.Header.L1TableOffset, l1);
        CheckResult result = new QedChecker(_file, _needCheck, _geo).Run(l1, repair);
        _needCheck.KnownCorrupt = result.Corruptions > 0 || result.CheckErrors > 0;
        _mapper = NewMapper(l1);
        _flusher = new MetadataFlusher(_file, _mapper, _needCheck, _stats);
        return result;
    }

    /// <summary>
    /// Re-reads header, backing name and L1 and starts an empty L2 cache; the backing chain
    /// reloads too, or is reopened when the header now names another file. A backing image
    /// that is replaced stays open until this image closes (a read may still be using it).
    /// </summary>
    public void Reload()
    {
        if (!IsReadOnly)
        {
            throw new InvalidOperationException($"{Path}: opened read-write; only a read-only image reloads its metadata");
        }

        lock (_reloadGate)
        {
            var (header, backingName, l1) = QedFormat.ReadMetadata(_file, Path);
            bool sameBacking = backingName == _backingName && header.BackingIsRaw == _needCheck.Header.BackingIsRaw;
            IBlockImage? backing = _backing.Prepare(Path, sameBacking, backingName, header.BackingIsRaw ? "raw" : null, _options);

            // Geometry first (VirtualSize), then the tables that agree with it.
            var needCheck = new NeedCheckFlag(_file, header);
            _geo = new QedGeometry(header);
            _needCheck = needCheck;
            _backingName = backingName;
            _backing.Commit(backing);

            _mapper = NewMapper(l1);
            _flusher = new MetadataFlusher(_file, _mapper, _needCheck, _stats);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            if (!IsReadOnly)
            {
                _flusher.Checkpoint();
            }
        }
        finally
        {
            _file.Dispose();
            _backing.Dispose();
        }
    }

    private ClusterMapper NewMapper(ulong[] l1) =>
        new(_file, _geo, l1, (long)_needCheck.Header.L1TableOffset, _cacheTables, _needCheck, _stats);

    /// <summary>Whole clusters: data clusters are zeroed in place on the host; unallocated ones over a backing file become zero clusters.</summary>
    private long ZeroWholeClusters(long offset, long length, bool unmap)
    {
        Allocation run = Backing is null ? _mapper.Map(offset, length) : _mapper.ZeroUnallocated(offset, length);
        if (run.State == AllocationState.Data)
        {
            _file.ZeroRange(run.HostOffset, run.Length, unmap);
        }

        return run.Length;
    }

    /// <summary>Part of one cluster: nothing to do where it already reads zeros, else zeros are written.</summary>
    private long ZeroPartialCluster(long offset, long length)
    {
        Allocation run = _mapper.Map(offset, length);
        switch (run.State)
        {
            case AllocationState.Data:
                _file.ZeroRange(run.HostOffset, length, release: false);
                break;
            case AllocationState.Unallocated when Backing is not null:
                byte[] zeros = ArrayPool<byte>.Shared.Rent((int)length);
                try
                {
                    zeros.AsSpan(0, (int)length).Clear();
                    Write(offset, zeros.AsSpan(0, (int)length));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(zeros);
                }

                break;
        }

        return length;
    }

    /// <summary>Every run of a request must advance within it: anything else is an arithmetic bug, and must not loop forever.</summary>
    private long Advance(long run, long remaining, long offset) =>
        run > 0 && run <= remaining
            ? run
            : throw new InvalidOperationException($"{Path}: internal error: a run of {run} bytes at {offset} with {remaining} bytes left");

    /// <summary>
    /// Keeps the cache near its bound. The request that triggers it has already succeeded, so a
    /// failed flush here is not its error: the metadata stays dirty, and the next flush or fsync
    /// retries and reports it (a failed sync has marked the file failed and logged it).
    /// </summary>
    private void FlushIfCacheFull()
    {
        if (_mapper.NeedsFlush)
        {
            try
            {
                _flusher.Flush();
            }
            catch (IOException)
            {
            }
        }
    }
}
