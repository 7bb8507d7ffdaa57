using CommandLine;
using CommandLine.Text;
using QedFuse.Block;

namespace QedFuse.Cli.Verbs;

[Verb("snapshot", HelpText = "List, create, apply or delete internal snapshots (like qemu-img snapshot; qcow2 images only).")]
internal sealed class SnapshotOptions
{
    [Option('l', "list", HelpText = "List the snapshots.")]
    public bool List { get; set; }

    [Option('c', "create", HelpText = "Create a snapshot NAME of the current content.")]
    public string? Create { get; set; }

    [Option('a', "apply", HelpText = "Revert the image to snapshot NAME.")]
    public string? Apply { get; set; }

    [Option('d', "delete", HelpText = "Delete snapshot NAME.")]
    public string? Delete { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true)]
    public string Image { get; set; } = "";

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("List the snapshots of a qcow2 image", new SnapshotOptions { List = true, Image = "vm.qcow2" }),
        new("Take a snapshot before an upgrade, go back to it if the upgrade fails", new SnapshotOptions { Create = "before-upgrade", Image = "vm.qcow2" }),
    ];
}

internal static class SnapshotVerb
{
    public static int Run(SnapshotOptions o)
    {
        int actions = (o.List ? 1 : 0) + (o.Create is null ? 0 : 1) + (o.Apply is null ? 0 : 1) + (o.Delete is null ? 0 : 1);
        if (actions != 1)
        {
            throw new UsageException("give exactly one of -l, -c NAME, -a NAME, -d NAME");
        }

        using IBlockImage image = ImageOpener.Open(o.Image, new ImageOpenOptions { ReadOnly = true, ForceShare = true, SkipBacking = true });
        throw new UsageException($"{o.Image}: the {image.FormatName} format has no internal snapshots (they are a qcow2 feature, not supported by qedfuse yet)");
    }
}
