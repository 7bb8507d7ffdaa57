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

    public CheckResult Check(CheckRepair repair) => Check(repair, null);

    /// <summary>Checks (and repairs) the on-disk metadata; afterwards the tables are re-read from disk.</summary>
    public CheckResult Check(CheckRepair repair, WorkProgress? progress)
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
        CheckResult result = new QedChecker(_file, _needCheck, _geo).Run(l1, repair, progress);
        _needCheck.KnownCorrupt = result.Corruptions > 0 || result.CheckErrors > 0;
        ReloadTables(l1);
        return result;
    }

    /// <summary>
    /// Grows the image by rewriting image_size in the header: clusters past the old end are
    /// unallocated, so they read from the backing chain or as zeros. QED cannot shrink (no
    /// table entry could be dropped safely without a check), nor grow past its L1 table's reach.
    /// </summary>
    public void Resize(long newSize)
    {
        RequireWritable();
        QedHeader h = _needCheck.Header;
        ulong max = QedHeader.MaxImageSize(h.ClusterSize, h.TableSize);
        if (newSize < VirtualSize)
        {
            throw new BadImageException(Path, "QED images cannot shrink (convert to a new, smaller image instead)");
        }

        if (newSize % 512 != 0)
        {
            throw new BadImageException(Path, $"size {newSize} is not a multiple of 512 bytes, as a QED image size must be");
        }

        if ((ulong)newSize > max)
        {
            throw new BadImageException(Path,
                $"cannot grow to {ByteSize.Format(newSize)}: with cluster_size {h.ClusterSize} and table_size {h.TableSize} this QED image "
                + $"addresses at most {ByteSize.Format((long)max)} (convert it to a new image with a larger cluster_size or table_size)");
        }

        _flusher.Flush();
        _needCheck.Rewrite(h with { ImageSize = (ulong)newSize });
        _geo.VirtualSize = newSize;
    }

    /// <summary>
    /// Rewrites the backing file name and the raw-no-probe bit. The name goes where it overlaps
    /// no byte of the old one when the header clusters have room, and is synced before the
    /// 64-byte header (one sector, written at once) switches to it: a crash leaves the old name
    /// or the new one, never a mix.
    /// </summary>
    public void SetBackingFile(string? name, string? format)
    {
        RequireWritable();
        QedHeader h = _needCheck.Header;
        const ulong backingBits = QedHeader.FeatureBackingFile | QedHeader.FeatureBackingFormatNoProbe;
        if (name is null)
        {
            _needCheck.Rewrite(h with { Features = h.Features & ~backingBits, BackingFilenameOffset = 0, BackingFilenameSize = 0 });
            _backingName = null;
            return;
        }

        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(name);
        long headerBytes = _geo.HeaderBytes;
        if (bytes.Length == 0 || bytes.Length > QedFormat.MaxBackingNameBytes || QedHeader.Size + bytes.Length > headerBytes)
        {
            throw new BadImageException(Path,
                $"backing file name of {bytes.Length} bytes does not fit in this image's {headerBytes - QedHeader.Size}-byte header space");
        }

        long offset = QedHeader.Size;
        long oldStart = h.HasBackingFile ? h.BackingFilenameOffset : 0, oldEnd = oldStart + (h.HasBackingFile ? h.BackingFilenameSize : 0);
        if (oldEnd > oldStart && offset < oldEnd && offset + bytes.Length > oldStart && oldEnd + bytes.Length <= headerBytes)
        {
            offset = oldEnd;
        }

        _file.Write(offset, bytes, IoEvent.HeaderUpdate);
        _file.Sync();
        ulong features = (h.Features & ~backingBits) | QedHeader.FeatureBackingFile
            | (format == "raw" ? QedHeader.FeatureBackingFormatNoProbe : 0);
        _needCheck.Rewrite(h with { Features = features, BackingFilenameOffset = (uint)offset, BackingFilenameSize = (uint)bytes.Length });
        _backingName = name;
    }

    /// <summary>
    /// Empties the image: need-check set, the L1 table zeroed and synced (each L1 entry is one
    /// aligned write, so a crash leaves some tables linked, all still valid), the file cut back
    /// to the header and L1 table, need-check cleared.
    /// </summary>
    public void MakeEmpty()
    {
        RequireWritable();
        _flusher.Flush();
        _needCheck.Set();
        long l1Offset = (long)_needCheck.Header.L1TableOffset;
        byte[] zeros = new byte[Math.Min(_geo.TableBytes, 1 << 20)];
        for (long done = 0; done < _geo.TableBytes; done += zeros.Length)
        {
            _file.Write(l1Offset + done, zeros.AsSpan(0, (int)Math.Min(zeros.Length, _geo.TableBytes - done)), IoEvent.L1Update);
        }

        _file.Sync();
        _file.SetLength(Math.Max(l1Offset + _geo.TableBytes, _geo.HeaderBytes));
        _file.Sync();
        ReloadTables(new ulong[_geo.TableEntries]);
        // No table is left to be corrupt: the image is the empty one create would make.
        _needCheck.KnownCorrupt = false;
        _needCheck.Clear();
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

            ReloadTables(l1);
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

    private void RequireWritable()
    {
        if (IsReadOnly)
        {
            throw new IOException($"{Path}: opened read-only", LibC.EROFS);
        }

        _file.ThrowIfFailed();
    }

    /// <summary>Starts over from <paramref name="l1"/> as on disk: a fresh mapper (empty cache, allocator at the file end) and flusher.</summary>
    private void ReloadTables(ulong[] l1)
    {
        _mapper = NewMapper(l1);
        _flusher = new MetadataFlusher(_file, _mapper, _needCheck, _stats);
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
