using CommandLine;
using QedFuse.Block;
using QedFuse.Cli.Help;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("map", HelpText = "Show where each range of the virtual disk is stored, through the backing chain (like qemu-img map).")]
[UsageLine("qedfuse map [--output=human|json] [-U] IMAGE")]
[Example("qedfuse map disk.qed", "The data ranges, with their offsets in the file holding them")]
[Example("qedfuse map --output=json overlay.qed", "Every range, with its depth in the backing chain and whether it reads as zeros")]
internal sealed class MapOptions
{
    [Option("output", Default = OutputFormat.Human, HelpText = "human (data ranges and the file holding them) or json (every range).")]
    public OutputFormat Output { get; set; }

    [Option('U', "force-share", HelpText = "Open even while another program writes the image.")]
    public bool ForceShare { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true)]
    public string Image { get; set; } = "";
}

internal static class MapVerb
{
    public static int Run(MapOptions o)
    {
        using IBlockImage image = ImageOpener.Open(o.Image, new ImageOpenOptions { ReadOnly = true, ForceShare = o.ForceShare });
        IEnumerable<MapRange> ranges = ChainMap.Walk(image, 0, image.VirtualSize);
        if (o.Output == OutputFormat.Json)
        {
            JsonOutput.Write(w =>
            {
                w.WriteStartArray();
                foreach (MapRange r in ranges)
                {
                    w.WriteStartObject();
                    w.WriteNumber("start", r.Start);
                    w.WriteNumber("length", r.Length);
                    w.WriteNumber("depth", r.Depth);
                    w.WriteBoolean("present", r.Present);
                    w.WriteBoolean("zero", r.Zero);
                    w.WriteBoolean("data", r.Data);
                    if (r.Data && r.HostOffset >= 0)
                    {
                        w.WriteNumber("offset", r.HostOffset);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            });
            return 0;
        }

        var data = ranges.Where(r => r.Data).ToList();
        if (data.Any(r => r.HostOffset < 0))
        {
            // As qemu-img: the human listing maps to host offsets, which compressed clusters do not have.
            Console.Error.WriteLine($"qedfuse: {o.Image}: contains compressed clusters, which have no host offset to show; use --output=json");
            return 1;
        }

        Console.WriteLine($"{"Offset",-16}{"Length",-16}{"Mapped to",-16}File");
        foreach (MapRange r in data)
        {
            Console.WriteLine($"{Hex(r.Start),-16}{Hex(r.Length),-16}{Hex(r.HostOffset),-16}{r.File}");
        }

        return 0;
    }

    /// <summary>printf's %#x: "0" for zero, "0x..." otherwise.</summary>
    private static string Hex(long v) => v == 0 ? "0" : $"0x{v:x}";
}
