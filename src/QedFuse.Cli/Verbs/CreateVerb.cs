using CommandLine;
using QedFuse.Block;
using QedFuse.Cli.Help;

namespace QedFuse.Cli.Verbs;

[Verb("create", HelpText = "Create a new, empty disk image (like qemu-img create), or an overlay that reads through to a backing file.")]
[UsageLine("qedfuse create [-f qed|qcow2|raw] [-b BACKING [-F BACKING_FMT]] [-o OPTIONS] IMAGE [SIZE]")]
[Example("qedfuse create disk.qed 20G", "A 20 GiB QED image")]
[Example("qedfuse create -b base.qed overlay.qed", "An overlay of the same size as base.qed: writes go to overlay.qed, the rest reads from base.qed")]
[Example("qedfuse create -o cluster_size=1M disk.qed 2T", "A large image with 1 MiB clusters (fewer, larger tables)")]
[Example("qedfuse create -f qcow2 -o cluster_size=1M disk.qcow2 20G", "A 20 GiB qcow2 image with 1 MiB clusters")]
internal sealed class CreateOptions
{
    [Option('f', "format", Default = "qed", HelpText = "Image format: qed, qcow2 or raw.")]
    public string Format { get; set; } = null!;

    [Option('b', "backing", HelpText = "Backing file: unallocated clusters read from it. A relative name is relative to IMAGE's directory.")]
    public string? Backing { get; set; }

    [Option('F', "backing-format", HelpText = "Format of the backing file (qed, qcow2 or raw); probed when omitted.")]
    public string? BackingFormat { get; set; }

    [Option('o', "options", HelpText = "Format options, comma-separated. qed: cluster_size=SIZE (power of two, 4K..64M, default 64K), table_size=N (clusters per table, power of two 1..16, default 4). qcow2: cluster_size=SIZE (power of two, 512..2M, default 64K), compat=0.10|1.1 (default 1.1), lazy_refcounts=on|off, refcount_bits=1|2|4|8|16|32|64 (default 16), compression_type=zlib|zstd, preallocation=off|metadata|falloc|full.")]
    public string? FormatOptions { get; set; }

    [Option("force", HelpText = "Replace IMAGE if it already exists.")]
    public bool Force { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true, HelpText = "Path of the image to create.")]
    public string Image { get; set; } = "";

    [Value(1, MetaName = "SIZE", HelpText = "Virtual size in bytes, or with a K, M, G or T suffix (powers of 1024); rounded up to 512 bytes. Defaults to the backing file's size.")]
    public string? Size { get; set; }
}

internal static class CreateVerb
{
    public static int Run(CreateOptions o)
    {
        long? size = null;
        if (o.Size is not null)
        {
            size = ByteSize.TryParse(o.Size) is { } n && n > 0
                ? n
                : throw new UsageException($"invalid size '{o.Size}': give bytes or a number with a K, M, G or T suffix");
        }

        var formatOptions = ParseKeyValues(o.FormatOptions);
        if (Directory.Exists(o.Image))
        {
            throw new UsageException($"{o.Image}: is a directory");
        }

        ImageOpener.Create(o.Image, o.Format, new ImageCreateOptions
        {
            Size = size,
            BackingFile = o.Backing,
            BackingFormat = o.BackingFormat,
            FormatOptions = formatOptions,
            Overwrite = o.Force,
        });

        using IBlockImage created = ImageOpener.Open(o.Image, new ImageOpenOptions { ReadOnly = true, ForceShare = true });
        ImageInfo info = created.GetInfo();
        string backing = o.Backing is null ? "" : $" backing_file={o.Backing}" + (info.BackingFilenameFormat is { } f ? $" backing_fmt={f}" : "");
        string cluster = info.ClusterSize is { } c ? $" cluster_size={c}" : "";
        Console.WriteLine($"Formatting '{o.Image}', fmt={info.Format} size={info.VirtualSize}{backing}{cluster}");
        return 0;
    }

    /// <summary>Parses qemu-img's "-o key=value,key=value".</summary>
    public static Dictionary<string, string> ParseKeyValues(string? text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(text))
        {
            return result;
        }

        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0 || eq == part.Length - 1)
            {
                throw new UsageException($"invalid option '{part}' in -o: expected key=value");
            }

            result[part[..eq]] = part[(eq + 1)..];
        }

        return result;
    }
}
