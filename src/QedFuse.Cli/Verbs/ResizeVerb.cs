using CommandLine;
using CommandLine.Text;
using QedFuse.Block;

namespace QedFuse.Cli.Verbs;

[Verb("resize", HelpText = "Change an image's virtual size (like qemu-img resize). Grow raw and QED images; shrink raw images with --shrink.")]
internal sealed class ResizeOptions
{
    [Option('f', "format", HelpText = "Format of IMAGE; probed when omitted.")]
    public string? Format { get; set; }

    [Option("shrink", HelpText = "Allow making the image smaller: everything past the new end is lost. Shrink the file system and partitions inside first.")]
    public bool Shrink { get; set; }

    [Option('q', "quiet", HelpText = "Print nothing but errors.")]
    public bool Quiet { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true)]
    public string Image { get; set; } = "";

    [Value(1, MetaName = "SIZE", Required = true, HelpText = "New size in bytes or with a K, M, G or T suffix; +SIZE grows by, -SIZE shrinks by (write '--' before a negative size).")]
    public string Size { get; set; } = "";

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("Grow a disk that filled up by 10 GiB (then grow the partition and file system inside)", new ResizeOptions { Image = "vm.qed", Size = "+10G" }),
        new("Set a raw disk to exactly 20 GiB, even if that shrinks it", new ResizeOptions { Shrink = true, Image = "disk.raw", Size = "20G" }),
    ];
}

internal static class ResizeVerb
{
    public static int Run(ResizeOptions o)
    {
        string text = o.Size.Trim();
        int sign = text.StartsWith('+') ? 1 : text.StartsWith('-') ? -1 : 0;
        long amount = ByteSize.TryParse(sign == 0 ? text : text[1..])
            ?? throw new UsageException($"invalid size '{o.Size}': give bytes or a number with a K, M, G or T suffix, optionally after + or -");

        using IBlockImage image = ImageOpener.Open(o.Image, new ImageOpenOptions { Format = o.Format });
        long current = image.VirtualSize;
        long size = sign == 0 ? amount : current + sign * amount;
        if (size <= 0)
        {
            throw new UsageException($"{o.Image}: the new size must be positive (the image has {current} bytes)");
        }

        if (size < current && !o.Shrink)
        {
            throw new UsageException($"{o.Image}: shrinking from {current} to {size} bytes loses everything past the new end; add --shrink once the file system inside is shrunk");
        }

        image.Resize(size);
        if (!o.Quiet)
        {
            Console.WriteLine("Image resized.");
        }

        return 0;
    }
}
