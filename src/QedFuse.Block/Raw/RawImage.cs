using QedFuse.Block.Native;

namespace QedFuse.Block.Raw;

/// <summary>A raw file as a disk image. Holes in the host file report as zero runs.</summary>
internal sealed class RawImage : IBlockImage
{
    private readonly HostFile _file;

    public RawImage(HostFile file)
    {
        _file = file;
        VirtualSize = file.Length;
    }

    public string Path => _file.Path;

    public string FormatName => "raw";

    public long VirtualSize { get; private set; }

    public bool IsReadOnly => !_file.Writable;

    public IBlockImage? Backing => null;

    public long AllocatedBytes => _file.AllocatedBytes;

    public void Read(long offset, Span<byte> buffer)
    {
        RequestBounds.CheckRead(this, offset, buffer.Length);
        _file.ReadExactly(offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        RequestBounds.CheckWrite(this, offset, data.Length);
        _file.Write(offset, data, IoEvent.DataWrite);
    }

    public void WriteZeroes(long offset, long length, bool unmap)
    {
        RequestBounds.CheckWrite(this, offset, length);
        _file.ZeroRange(offset, length, unmap);
    }

    public Allocation GetAllocation(long offset, long length)
    {
        long data = _file.NextData(offset);
        if (data < 0 || data >= offset + length)
        {
            // ENXIO (no data after offset), or data only beyond the range: all hole here.
            return new Allocation(AllocationState.Zero, length);
        }

        if (data > offset)
        {
            return new Allocation(AllocationState.Zero, data - offset);
        }

        long hole = _file.NextHole(offset);
        long end = hole < 0 ? offset + length : Math.Min(hole, offset + length);
        return new Allocation(AllocationState.Data, end - offset, offset);
    }

    public void Flush() => _file.Sync();

    public void Checkpoint()
    {
        // Raw has no metadata to bring to a consistent state.
    }

    public ImageInfo GetInfo() => new()
    {
        Filename = Path,
        Format = FormatName,
        VirtualSize = VirtualSize,
        ActualSize = _file.AllocatedBytes,
    };

    public CheckResult Check(CheckRepair repair) => new() { Filename = Path, Format = FormatName, Supported = false };

    /// <summary>Any size: the file is the disk. Growing leaves a hole, so the new range reads as zeros.</summary>
    public void Resize(long newSize)
    {
        if (IsReadOnly)
        {
            throw new IOException($"{Path}: opened read-only", LibC.EROFS);
        }

        _file.SetLength(newSize);
        _file.Sync();
        VirtualSize = newSize;
    }

    /// <summary>A raw file's only metadata is its length.</summary>
    public void Reload()
    {
        if (!IsReadOnly)
        {
            throw new InvalidOperationException($"{Path}: opened read-write; only a read-only image reloads its metadata");
        }

        VirtualSize = _file.Length;
    }

    public void Dispose() => _file.Dispose();
}
