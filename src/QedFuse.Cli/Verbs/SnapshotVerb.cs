using CommandLine;
using QedFuse.Block;

namespace QedFuse.Cli.Verbs;

[Verb("snapshot", HelpText = "List, create, apply or delete internal snapshots (like qemu-img snapshot; qcow2 images only).")]
internal sealed class SnapshotOptions
{
    [Option('l', "list", SetName = "list", HelpText = "List the snapshots.")]
    public bool List { get; set; }

    [Option('c', "create", SetName = "create", HelpText = "Create a snapshot NAME of the current content.")]
    public string? Create { get; set; }

    [Option('a', "apply", SetName = "apply", HelpText = "Revert the image to snapshot NAME.")]
    public string? Apply { get; set; }

    [Option('d', "delete", SetName = "delete", HelpText = "Delete snapshot NAME.")]
    public string? Delete { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true)]
    public string Image { get; set; } = "";
}

internal static class SnapshotVerb
{
    public static int Run(SnapshotOptions o)
    {
        using IBlockImage image = ImageOpener.Open(o.Image, new ImageOpenOptions { ReadOnly = true, ForceShare = true, SkipBacking = true });
        throw new UsageException($"{o.Image}: the {image.FormatName} format has no internal snapshots (they are a qcow2 feature, not supported by qedfuse yet)");
    }
}
