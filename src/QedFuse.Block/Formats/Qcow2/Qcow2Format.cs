namespace QedFuse.Block.Formats.Qcow2;

/// <summary>The qcow2 driver: probe by magic, open with validation and backing chain; create.</summary>
public sealed class Qcow2Format : IImageFormat
{
    public const string FormatName = "qcow2";

    public string Name => FormatName;

    public bool Probe(ReadOnlySpan<byte> head) => Qcow2Header.HasMagic(head);

    public IBlockImage Open(string path, ImageOpenOptions options, ImageOpener opener)
    {
        if (!options.ReadOnly)
        {
            // Refused before the file is even opened for writing: nothing can change it.
            throw new BadImageException(path, "qcow2 is read-only in this version; mount with -o ro");
        }

        HostFile file = HostFile.Open(path, writable: false,
            options.ForceShare ? ImageLock.Role.SharedReader : ImageLock.Role.Reader, options.HostFileHook);
        IBlockImage? backing = null;
        try
        {
            Qcow2Layout layout = Qcow2Layout.Read(file, path);
            if (layout.Header.IsCorrupt)
            {
                options.Log?.Invoke($"{path}: the image is marked corrupt (corrupt bit set); serving it read-only");
            }

            if (layout.Extensions.BackingName is { } backingName)
            {
                backing = opener.OpenBacking(path, backingName, layout.Extensions.BackingFormatName, options);
            }

            int cacheTables = (int)Math.Clamp(options.CacheBytes / layout.Geometry.ClusterSize, 1, int.MaxValue);
            return new Qcow2Image(file, layout, backing, cacheTables);
        }
        catch
        {
            backing?.Dispose();
            file.Dispose();
            throw;
        }
    }

    public void Create(string path, ImageCreateOptions options, ImageOpener opener) =>
        Qcow2Creator.Create(path, options, opener);
}
