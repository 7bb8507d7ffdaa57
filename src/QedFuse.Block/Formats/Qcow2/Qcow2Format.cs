namespace QedFuse.Block.Formats.Qcow2;

/// <summary>The qcow2 driver: probe by magic, open with validation and backing chain; create.</summary>
public sealed class Qcow2Format : IImageFormat
{
    public const string FormatName = "qcow2";

    public string Name => FormatName;

    public bool Probe(ReadOnlySpan<byte> head) => Qcow2Header.HasMagic(head);

    public IBlockImage Open(string path, ImageOpenOptions options, ImageOpener opener)
    {
        var role = options.ReadOnly
            ? (options.ForceShare ? ImageLock.Role.SharedReader : ImageLock.Role.Reader)
            : ImageLock.Role.Writer;
        HostFile file = HostFile.Open(path, !options.ReadOnly, role, options.HostFileHook);
        IBlockImage? backing = null;
        try
        {
            Qcow2Layout layout = Qcow2Layout.Read(file, path);
            if (!options.ReadOnly)
            {
                RefuseUnsafeWrites(layout, path);
            }
            else if (layout.Header.IsCorrupt)
            {
                options.Log?.Invoke($"{path}: the image is marked corrupt (corrupt bit set); serving it read-only");
            }

            if (layout.Extensions.BackingName is { } backingName)
            {
                backing = opener.OpenBacking(path, backingName, layout.Extensions.BackingFormatName, options);
            }

            if (!options.ReadOnly && layout.Header.AutoclearFeatures != 0)
            {
                // Nothing this driver keeps up to date may claim to be consistent after our writes.
                Span<byte> zero = stackalloc byte[8];
                file.Write(88, zero, IoEvent.HeaderUpdate);
                file.Sync();
            }

            int cacheTables = (int)Math.Clamp(options.CacheBytes / layout.Geometry.ClusterSize, 1, int.MaxValue);
            return new Qcow2Image(file, layout, backing, cacheTables, options.Log);
        }
        catch
        {
            backing?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>A read-write open needs an image without the corrupt bit, whose refcounts can be trusted (no dirty bit).</summary>
    private static void RefuseUnsafeWrites(Qcow2Layout layout, string path)
    {
        Qcow2Header h = layout.Header;
        if (h.IsCorrupt)
        {
            throw new BadImageException(path, "is marked corrupt (corrupt bit set): it can only be opened read-only (-o ro); 'qemu-img check -r all' repairs it");
        }

        if (h.IsDirty)
        {
            throw new BadImageException(path, "was not closed cleanly (dirty bit set, lazy refcounts): rebuilding refcounts is not supported in this version; open it read-only (-o ro) or run 'qemu-img check -r all'");
        }
    }

    public void Create(string path, ImageCreateOptions options, ImageOpener opener) =>
        Qcow2Creator.Create(path, options, opener);
}
