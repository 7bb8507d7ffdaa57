using System.Text.Json;
using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Cli.Live;

namespace QedFuse.Cli.Verbs;

[Verb("refresh", HelpText = "Make a read-only mount forget the image metadata it cached (tables, size, backing file) and the kernel's cached pages, "
    + "and read the images again: for images another program (a running VM) writes, mounted with -o ro,force_share "
    + "(which also does this by itself on every open of a changed image). A read-write mount refuses: it owns its images.")]
internal sealed class RefreshOptions
{
    [Value(0, MetaName = "MOUNTPOINT", Required = true)]
    public string MountPoint { get; set; } = "";

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("See what a running VM has written since", new RefreshOptions { MountPoint = "/mnt/x" }),
    ];
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
