using QedFuse.Block.Clusters;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// An open qcow2 image. This version serves reads only: the write path (allocation with
/// refcount updates, copy-on-write, discard) is refused at open, so a qcow2 image is never
/// changed.
/// </summary>
internal sealed class Qcow2Image : IBlockImage
{
    private readonly HostFile _file;
    private readonly Qcow2Layout _layout;
    private readonly Qcow2ClusterMap _map;
    private bool _disposed;

    public Qcow2Image(HostFile file, Qcow2Layout layout, IBlockImage? backing, int cacheTables)
    {
        _file = file;
        _layout = layout;
        Backing = backing;
        _map = new Qcow2ClusterMap(file, layout.Geometry, layout.Header.CompressionType, layout.L1, cacheTables);
    }

    public string Path => _file.Path;

    public string FormatName => Qcow2Format.FormatName;

    public long VirtualSize => _layout.Geometry.VirtualSize;

    public bool IsReadOnly => true;

    public IBlockImage? Backing { get; }

    public long AllocatedBytes => _file.AllocatedBytes;

    public void Read(long offset, Span<byte> buffer)
    {
        RequestBounds.CheckRead(this, offset, buffer.Length);
        ClusterReader.Read(_map, _file, Backing, _layout.Geometry.ClusterSize, offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data) => RequestBounds.CheckWrite(this, offset, data.Length);

    public void WriteZeroes(long offset, long length, bool unmap) => RequestBounds.CheckWrite(this, offset, length);

    public Allocation GetAllocation(long offset, long length)
    {
        RequestBounds.CheckRead(this, offset, length);
        return _map.Map(offset, length).ToAllocation();
    }

    public void Flush()
    {
        // Nothing is ever written.
    }

    public void Checkpoint()
    {
        // Nothing is ever written.
    }

    public ImageInfo GetInfo() => _layout.Describe(Path, _file.AllocatedBytes);

    public CheckResult Check(CheckRepair repair) =>
        repair != CheckRepair.None
            ? throw new BadImageException(Path, "qcow2 images are read-only in this version: check cannot repair them")
            : new Qcow2Checker(_file, _layout).Run();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _file.Dispose();
        Backing?.Dispose();
    }
}
