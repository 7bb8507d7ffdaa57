using System.Buffers;
using System.Buffers.Binary;
using QedFuse.Block.Clusters;
using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// An open qcow2 image: reads and writes walk the request as runs (the format-neutral
/// request loop); metadata is written back by <see cref="Flush"/> in qcow2's crash-safe
/// order (refcount blocks, refcount table, L2 tables, L1; frees only after the entries that
/// dropped them are durable). Refcounts are always kept up to date on disk, so the dirty bit
/// is never needed (lazy refcounts permit deferring, they do not require it).
/// </summary>
internal sealed class Qcow2Image : IBlockImage
{
    private readonly HostFile _file;
    private readonly int _cacheTables;
    private readonly ImageOpenOptions _options;
    private readonly MetadataStatistics _stats = new();
    private readonly object _reloadGate = new();
    private readonly ReloadableBacking _backing;

    // Replaced together by Reload (read-only images only); a request takes local copies, so
    // it walks one generation of the metadata.
    private Qcow2Layout _layout;
    private Qcow2ClusterMap _map;
    private readonly object _flushGate = new();
    private readonly Action<string>? _log;
    private bool _disposed;

    public Qcow2Image(HostFile file, Qcow2Layout layout, IBlockImage? backing, int cacheTables, ImageOpenOptions options)
    {
        _file = file;
        _layout = layout;
        _cacheTables = cacheTables;
        _options = options;
        _log = options.Log;
        _backing = new ReloadableBacking(backing);
        RefcountStore? refcounts = file.Writable ? new RefcountStore(file, layout) : null;
        _map = new Qcow2ClusterMap(file, layout, refcounts, cacheTables, MarkCorrupt, _stats);
    }

    public MetadataCounters Counters => _stats.Snapshot(0);

    public string Path => _file.Path;

    public string FormatName => Qcow2Format.FormatName;

    public long VirtualSize => _layout.Geometry.VirtualSize;

    public bool IsReadOnly => !_file.Writable;

    public IBlockImage? Backing => _backing.Current;

    public long AllocatedBytes => _file.AllocatedBytes;

    private long ClusterSize => _layout.Geometry.ClusterSize;

    public void Read(long offset, Span<byte> buffer)
    {
        RequestBounds.CheckRead(this, offset, buffer.Length);
        Qcow2ClusterMap map = _map;
        IBlockImage? backing = Backing;
        ClusterReader.Read(map, _file, backing, ClusterSize, offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        RequestBounds.CheckWrite(this, offset, data.Length);
        _file.ThrowIfFailed();
        ClusterWriter.Write(_map, _file, Backing, _layout.Geometry.ClusterBits, offset, data);
        FlushIfCacheFull();
    }

    public void WriteZeroes(long offset, long length, bool unmap)
    {
        RequestBounds.CheckWrite(this, offset, length);
        _file.ThrowIfFailed();
        long end = offset + length;
        while (offset < end)
        {
            long clusterStart = offset & ~(ClusterSize - 1);
            long clusterEnd = clusterStart + Math.Min(ClusterSize, VirtualSize - clusterStart);
            long done = 0;
            if (offset == clusterStart && end >= clusterEnd)
            {
                // Whole clusters (the last one may end at the virtual size mid-cluster).
                long wholeEnd = end == VirtualSize ? end : end & ~(ClusterSize - 1);
                done = _map.ZeroClusters(offset, RoundUpToCluster(wholeEnd) - offset, unmap, Backing is not null);
                done = Math.Min(done, wholeEnd - offset);
            }

            if (done == 0)
            {
                done = Math.Min(end, clusterEnd) - offset;
                WriteZeroBytes(offset, done);
            }

            if (done <= 0)
            {
                throw new InvalidOperationException($"{Path}: zeroing at {offset} made no progress");
            }

            offset += done;
            FlushIfCacheFull();
        }

        if (_map.FreesPending)
        {
            // Make the freed clusters reusable now, so that rewriting after a discard does not grow the file.
            Flush();
        }
    }

    public Allocation GetAllocation(long offset, long length)
    {
        RequestBounds.CheckRead(this, offset, length);
        return _map.Map(offset, length).ToAllocation();
    }

    public void Flush()
    {
        if (IsReadOnly)
        {
            return;
        }

        lock (_flushGate)
        {
            _file.ThrowIfFailed();
            FlushPass pass = _map.TakeFlushPass();
            bool written = false;
            try
            {
                RunFailingTheImage(pass.Writes);
                written = true;
            }
            finally
            {
                pass.Complete(written);
            }

            // The frees that pass made safe, and a moved refcount table's old clusters.
            StagedWriteBack frees = _map.TakeRefcountPass();
            if (!frees.IsEmpty)
            {
                RunFailingTheImage(frees);
            }

            _map.TrimFile();
        }
    }

    public void Checkpoint() => Flush();

    /// <summary>
    /// Re-reads header, extensions, L1 and snapshot table and starts an empty cache; the
    /// backing chain reloads too, or is reopened when the header names another file. A
    /// replaced backing image stays open until this image closes (a read may still use it).
    /// </summary>
    public void Reload()
    {
        if (!IsReadOnly)
        {
            throw new InvalidOperationException($"{Path}: opened read-write; only a read-only image reloads its metadata");
        }

        lock (_reloadGate)
        {
            Qcow2Layout layout = Qcow2Layout.Read(_file, Path);
            string? name = layout.Extensions.BackingName;
            string? format = layout.Extensions.BackingFormatName;
            bool sameBacking = name == _layout.Extensions.BackingName && format == _layout.Extensions.BackingFormatName;
            IBlockImage? backing = _backing.Prepare(Path, sameBacking, name, format, _options);

            var map = new Qcow2ClusterMap(_file, layout, null, _cacheTables, MarkCorrupt, _stats);
            _layout = layout;
            _backing.Commit(backing);
            _map = map;
        }
    }

    /// <summary>
    /// A pass that fails part-way has marked its metadata clean (refcount blocks, tables): the
    /// image cannot say what is on disk any more, so it fails (EIO from now on) rather than
    /// retry from a state it no longer has.
    /// </summary>
    private void RunFailingTheImage(StagedWriteBack writes)
    {
        try
        {
            writes.Run(_file);
        }
        catch (IOException e) when (e is not ImageFailedException)
        {
            string reason = $"metadata write-back failed ({e.Message})";
            _file.Fail(reason);
            throw new ImageFailedException(Path, reason, e.HResult is > 0 and < 4096 ? e.HResult : Native.LibC.EIO);
        }
    }

    public ImageInfo GetInfo() => _layout.Describe(Path, _file.AllocatedBytes);

    /// <summary>
    /// Checks, and repairs as qemu-img check -r does: leaks (stored refcount above the
    /// references) with <see cref="CheckRepair.Leaks"/>; with <see cref="CheckRepair.All"/> also
    /// refcounts below the references and copied flags. Repairs go through the normal write-back
    /// (refcounts before the tables whose flags depend on them). A damaged refcount structure
    /// (a block misaligned or outside the file) is reported, not rebuilt.
    /// </summary>
    public CheckResult Check(CheckRepair repair)
    {
        if (IsReadOnly && repair != CheckRepair.None)
        {
            throw new BadImageException(Path, "opened read-only: cannot repair");
        }

        Flush();
        var checker = new Qcow2Checker(_file, Qcow2Layout.Read(_file, Path));
        CheckResult before = checker.Run();
        if (repair == CheckRepair.None || checker.RefcountStructureDamaged)
        {
            return before;
        }

        var fixes = checker.Mismatches.Where(m => m.Stored > m.Counted || repair == CheckRepair.All).ToList();
        _map.SetRefcounts(fixes.Select(m => (m.Cluster, m.Counted)));
        Flush();
        long copiedFixed = 0;
        if (repair == CheckRepair.All)
        {
            // Against the repaired refcounts, as qemu-img does.
            copiedFixed = _map.FixCopiedFlags();
            Flush();
        }

        CheckResult after = new Qcow2Checker(_file, Qcow2Layout.Read(_file, Path)).Run();
        return after with
        {
            LeaksFixed = fixes.Count(m => m.Stored > m.Counted),
            CorruptionsFixed = fixes.Count(m => m.Stored < m.Counted) + copiedFixed,
            Messages = [.. fixes.Select(m => $"Repairing cluster {m.Cluster} refcount={m.Stored} reference={m.Counted}"), .. after.Messages],
        };
    }

    /// <summary>Clears the dirty bit (after a repair made the refcounts right), durably.</summary>
    public void ClearDirtyBit()
    {
        Qcow2Header h = _layout.Header;
        Span<byte> bits = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bits, h.IncompatibleFeatures & ~Qcow2Header.IncompatDirty);
        _file.Write(72, bits, IoEvent.HeaderUpdate);
        _file.Sync();
        _layout.Header = h with { IncompatibleFeatures = h.IncompatibleFeatures & ~Qcow2Header.IncompatDirty };
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
                // A failed image says so on close too: what was acknowledged since its last good flush is not durable.
                _file.ThrowIfFailed();
                Flush();
            }
        }
        finally
        {
            _file.Dispose();
            _backing.Dispose();
        }
    }

    private long RoundUpToCluster(long offset) => (offset + ClusterSize - 1) & ~(ClusterSize - 1);

    /// <summary>Part of a cluster: nothing to do where it already reads as zeros, else zeros are written.</summary>
    private void WriteZeroBytes(long offset, long length)
    {
        byte[] zeros = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, 1 << 20));
        try
        {
            for (long done = 0; done < length;)
            {
                long n = Math.Min(length - done, zeros.Length);
                ClusterRun run = _map.Map(offset + done, n);
                n = run.Length;
                if (run.Kind is not RunKind.Zero && !(run.Kind == RunKind.Unallocated && Backing is null))
                {
                    zeros.AsSpan(0, (int)n).Clear();
                    ClusterWriter.Write(_map, _file, Backing, _layout.Geometry.ClusterBits, offset + done, zeros.AsSpan(0, (int)n));
                }

                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(zeros);
        }
    }

    private void FlushIfCacheFull()
    {
        if (_map.NeedsFlush)
        {
            Flush();
        }
    }

    /// <summary>Sets the corrupt bit on disk (v3; v2 has none) so that no program writes the image again before a repair.</summary>
    private void MarkCorrupt(string problem)
    {
        _log?.Invoke($"{Path}: {problem}; marking the image corrupt");
        if (_layout.Header.Version != 3)
        {
            return;
        }

        try
        {
            Span<byte> bits = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(bits, _layout.Header.IncompatibleFeatures | Qcow2Header.IncompatCorrupt);
            _file.Write(72, bits, IoEvent.HeaderUpdate);
            _file.Sync();
        }
        catch (IOException)
        {
            // The bit is a courtesy to the next program; the image is failed either way.
        }
    }
}
