using System.Buffers.Binary;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>The qcow2 driver: probe by magic, open with validation and backing chain; create.</summary>
public sealed class Qcow2Format : IImageFormat
{
    public const string FormatName = "qcow2";

    public string Name => FormatName;

    // Version 1 shares the magic but is the older qcow format, which QEMU probes separately;
    // leaving it to the foreign-format list names it for what it is.
    public bool Probe(ReadOnlySpan<byte> head) =>
        Qcow2Header.HasMagic(head) && head.Length >= 8 && BinaryPrimitives.ReadUInt32BigEndian(head[4..]) >= 2;

    public IBlockImage Open(string path, ImageOpenOptions options, ImageOpener opener)
    {
        HostFile file = HostFile.Open(path, options);
        IBlockImage? backing = null;
        try
        {
            Qcow2Layout layout = Qcow2Layout.Read(file, path);
            if (!options.ReadOnly && layout.Header.IsCorrupt)
            {
                throw new BadImageException(path, "is marked corrupt (corrupt bit set): it can only be opened read-only (-o ro); 'qemu-img check -r all' repairs it");
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
            var image = new Qcow2Image(file, layout, backing, cacheTables, options);
            if (!options.ReadOnly && layout.Header.IsDirty && !options.SkipRepair)
            {
                // On failure the image is dropped unflushed (the catch below closes its files).
                RepairDirty(image, path, options.Log);
            }

            return image;
        }
        catch
        {
            backing?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An image left with the dirty bit (lazy refcounts in use when its writer stopped) has
    /// refcounts that may be wrong: a read-write open rebuilds them from the tables, as QEMU
    /// does, and refuses the open if that leaves corruptions.
    /// </summary>
    private static void RepairDirty(Qcow2Image image, string path, Action<string>? log)
    {
        CheckResult r = image.Check(CheckRepair.All);
        if (r.Corruptions > 0 || r.CheckErrors > 0)
        {
            throw new BadImageException(path,
                $"was not closed cleanly (dirty bit set) and its repair left {r.Corruptions} corruptions: open it read-only (-o ro), or run 'qemu-img check -r all'");
        }

        image.ClearDirtyBit();
        log?.Invoke($"{path}: was not closed cleanly (dirty bit set); refcounts checked: {r.LeaksFixed} leaked clusters reclaimed, {r.CorruptionsFixed} corruptions repaired");
    }

    public void Create(string path, ImageCreateOptions options, ImageOpener opener) =>
        Qcow2Creator.Create(path, options, opener);
}
