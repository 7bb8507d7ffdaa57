using QedFuse.Block.Formats.Qcow2;
using QedFuse.Block.Qed;
using QedFuse.Block.Raw;

namespace QedFuse.Block;

/// <summary>
/// Opens images by probing their format and builds backing chains: names are resolved against
/// the directory of the image that names them, backing files open read-only, and a chain that
/// loops or runs deeper than <see cref="MaxChainDepth"/> is refused.
/// </summary>
public sealed class ImageOpener
{
    public const int MaxChainDepth = 32;

    /// <summary>Probe order matters: raw recognises everything, so it comes last.</summary>
    public static readonly IReadOnlyList<IImageFormat> Formats = [new QedFormat(), new Qcow2Format(), new RawFormat()];

    private readonly HashSet<string> _chain = new(StringComparer.Ordinal);

    /// <summary>An image already open (read-write) that stands in for its file wherever the chain names it.</summary>
    private IBlockImage? _substitute;

    public static IBlockImage Open(string path, ImageOpenOptions options) =>
        new ImageOpener().OpenLayer(path, options);

    /// <summary>
    /// Opens <paramref name="path"/> with its backing chain, using the already open
    /// <paramref name="layer"/> where the chain reaches its file (commit writes into a base
    /// while reading through the layers above it; a second open of the base would collide
    /// with our own lock). When the chain does use <paramref name="layer"/>, the returned image
    /// owns it; check with <see cref="ChainContains"/>.
    /// </summary>
    public static IBlockImage OpenAbove(string path, ImageOpenOptions options, IBlockImage layer) =>
        new ImageOpener { _substitute = layer }.OpenLayer(path, options);

    /// <summary>Whether <paramref name="layer"/> is <paramref name="top"/> or one of its backing images.</summary>
    public static bool ChainContains(IBlockImage top, IBlockImage layer)
    {
        for (IBlockImage? i = top; i is not null; i = i.Backing)
        {
            if (ReferenceEquals(i, layer))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The file's canonical path (symbolic links resolved), as the chain compares files.</summary>
    public static string RealPath(string path) =>
        System.IO.Path.GetFullPath(new FileInfo(path).ResolveLinkTarget(true)?.FullName ?? path);

    public static void Create(string path, string format, ImageCreateOptions options) =>
        FindFormat(format, path).Create(path, options, new ImageOpener());

    public static IImageFormat FindFormat(string name, string path) =>
        Formats.FirstOrDefault(f => f.Name == name)
        ?? throw new BadImageException(path, $"unknown format '{name}' (supported: {string.Join(", ", Formats.Select(f => f.Name))})");

    /// <summary>The formats the drivers read, for messages: "QED and raw", or "QED or qcow2" without raw.</summary>
    public static string Readable(bool includeRaw, string conjunction = "and")
    {
        var names = Formats.Where(f => includeRaw || f is not RawFormat).Select(f => f.Name == QedFormat.FormatName ? "QED" : f.Name).ToList();
        return names.Count == 1 ? names[0] : $"{string.Join(", ", names[..^1])} {conjunction} {names[^1]}";
    }

    /// <summary>Resolves a backing file name as stored in <paramref name="ownerPath"/>, for opening it.</summary>
    public static string ResolveBackingPath(string ownerPath, string backingName) =>
        JoinBackingName(System.IO.Path.GetFullPath(ownerPath), backingName);

    /// <summary>
    /// The backing name joined to the directory part of the image path as written, the way
    /// qemu-img prints "full-backing-filename": an absolute name stands alone.
    /// </summary>
    public static string JoinBackingName(string imagePath, string backingName)
    {
        if (backingName.StartsWith('/'))
        {
            return backingName;
        }

        int slash = imagePath.LastIndexOf('/');
        return slash < 0 ? backingName : imagePath[..(slash + 1)] + backingName;
    }

    /// <summary>Opens the backing file named in <paramref name="ownerPath"/>, read-only, with its own chain.</summary>
    public IBlockImage OpenBacking(string ownerPath, string backingName, string? format, ImageOpenOptions ownerOptions)
    {
        string path = ResolveBackingPath(ownerPath, backingName);
        if (!File.Exists(path))
        {
            throw new BadImageException(path, $"backing file of {ownerPath} not found");
        }

        if (_substitute is { } layer && RealPath(layer.Path) == RealPath(path))
        {
            return layer;
        }

        return OpenLayer(path, new ImageOpenOptions
        {
            ReadOnly = true,
            Format = format,
            ForceShare = ownerOptions.ForceShare,
            Log = ownerOptions.Log,
        });
    }

    private IBlockImage OpenLayer(string path, ImageOpenOptions options)
    {
        if (!File.Exists(path))
        {
            throw new BadImageException(path, Directory.Exists(path) ? "is a directory, not an image" : "no such file");
        }

        string real = RealPath(path);
        if (!_chain.Add(real))
        {
            throw new BadImageException(path, "backing chain loops back to this file");
        }

        if (_chain.Count > MaxChainDepth)
        {
            throw new BadImageException(path, $"backing chain deeper than {MaxChainDepth} images");
        }

        IImageFormat format = options.Format is { } name ? FindFormat(name, path) : Probe(path);
        return format.Open(path, options, this);
    }

    private static IImageFormat Probe(string path)
    {
        Span<byte> head = stackalloc byte[512];
        int n;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            n = RandomAccess.Read(handle, head, 0);
        }
        catch (UnauthorizedAccessException)
        {
            throw new BadImageException(path, "permission denied");
        }

        foreach (IImageFormat format in Formats)
        {
            // Raw takes whatever no driver claimed, except what QEMU would read as another format.
            if (format is RawFormat && ForeignFormats.Identify(head[..n]) is { } foreign)
            {
                throw new UnsupportedFormatException(path, foreign);
            }

            if (format.Probe(head[..n]))
            {
                return format;
            }
        }

        throw new BadImageException(path, "unrecognised format");
    }
}
