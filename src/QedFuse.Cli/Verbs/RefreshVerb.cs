using System.Text.Json;
using CommandLine;
using QedFuse.Block;
using QedFuse.Cli.Live;
using QedFuse.Cli.Help;

namespace QedFuse.Cli.Verbs;

[Verb("refresh", HelpText = "Make a read-only mount forget the image metadata it cached (tables, size, backing file) and the kernel's cached pages, "
    + "and read the images again: for images another program (a running VM) writes, mounted with -o ro,force_share "
    + "(which also does this by itself on every open of a changed image). A read-write mount refuses: it owns its images.")]
[UsageLine("qedfuse refresh MOUNTPOINT")]
[Example("qedfuse refresh /mnt/vm", "Show the current content of an image a running VM writes (mounted with -o ro,force_share)")]
internal sealed class RefreshOptions
{
    [Value(0, MetaName = "MOUNTPOINT", Required = true)]
    public string MountPoint { get; set; } = "";
}

internal static class RefreshVerb
{
    public static int Run(RefreshOptions o)
    {
        JsonElement result = ControlClient.Request(o.MountPoint, "refresh");
        foreach (JsonElement f in result.GetProperty("files").EnumerateArray())
        {
            long size = f.GetProperty("virtual_size").GetInt64();
            long before = f.GetProperty("previous_virtual_size").GetInt64();
            string change = size == before ? "" : $" (was {ByteSize.Format(before)})";
            Console.WriteLine($"{f.GetProperty("name").GetString()}: reloaded, {ByteSize.Format(size)}{change}");
        }

        return 0;
    }
}
