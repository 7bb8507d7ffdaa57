using System.Text.Json;
using CommandLine;
using QedFuse.Block;
using QedFuse.Cli.Help;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("info", HelpText = "Show an image's format, sizes and backing file (like qemu-img info).")]
[UsageLine("qedfuse info [--output=human|json] [--backing-chain] [-U] IMAGE")]
[Example("qedfuse info disk.qed", "Format, virtual size, disk size, cluster size, backing file")]
[Example("qedfuse info --backing-chain --output=json overlay.qed", "Every image of the chain, as qemu-img's JSON")]
[Example("qedfuse info -U disk.qed", "An image a VM or a mount has open for writing (may be stale)")]
internal sealed class InfoOptions
{
    [Option("output", Default = OutputFormat.Human, HelpText = "human or json (qemu-img's key names).")]
    public OutputFormat Output { get; set; }

    [Option("backing-chain", HelpText = "Also describe every image of the backing chain.")]
    public bool BackingChain { get; set; }

    [Option('U', "force-share", HelpText = "Open even while another program (QEMU, a qedfuse mount) writes the image; what you see may be stale.")]
    public bool ForceShare { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true)]
    public string Image { get; set; } = "";
}

internal enum OutputFormat
{
    Human,
    Json,
}

internal static class InfoVerb
{
    public static int Run(InfoOptions o)
    {
        using IBlockImage image = ImageOpener.Open(o.Image, new ImageOpenOptions { ReadOnly = true, ForceShare = o.ForceShare });
        // Each backing layer is named as its overlay resolves it, as qemu-img does.
        var chain = new List<ImageInfo>();
        string name = o.Image;
        for (IBlockImage? layer = image; layer is not null; layer = o.BackingChain ? layer.Backing : null)
        {
            ImageInfo info = layer.GetInfo() with { Filename = name };
            chain.Add(info);
            name = info.FullBackingFilename ?? "";
        }

        if (o.Output == OutputFormat.Json)
        {
            JsonOutput.Write(w =>
            {
                if (o.BackingChain)
                {
                    w.WriteStartArray();
                }

                chain.ForEach(info => WriteJson(w, info));
                if (o.BackingChain)
                {
                    w.WriteEndArray();
                }
            });
        }
        else
        {
            Console.Write(string.Join("\n", chain.Select(Human)));
        }

        return 0;
    }

    private static void WriteJson(Utf8JsonWriter w, ImageInfo i)
    {
        w.WriteStartObject();
        if (i.Snapshots.Count > 0)
        {
            w.WriteStartArray("snapshots");
            foreach (SnapshotInfo s in i.Snapshots)
            {
                w.WriteStartObject();
                if (s.Icount is { } icount)
                {
                    w.WriteNumber("icount", icount);
                }

                w.WriteNumber("vm-clock-nsec", s.VmClockNanoseconds % 1_000_000_000);
                w.WriteString("name", s.Name);
                w.WriteNumber("date-sec", s.DateSeconds);
                w.WriteNumber("date-nsec", s.DateNanoseconds);
                w.WriteNumber("vm-clock-sec", s.VmClockNanoseconds / 1_000_000_000);
                w.WriteString("id", s.Id);
                w.WriteNumber("vm-state-size", s.VmStateSize);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        w.WriteNumber("virtual-size", i.VirtualSize);
        w.WriteString("filename", i.Filename);
        if (i.ClusterSize is { } cs)
        {
            w.WriteNumber("cluster-size", cs);
        }

        w.WriteString("format", i.Format);
        w.WriteNumber("actual-size", i.ActualSize);
        if (i.FormatSpecific is { } fs)
        {
            w.WriteStartObject("format-specific");
            w.WriteString("type", fs.Type);
            w.WriteStartObject("data");
            foreach (var (key, value) in fs.Data)
            {
                switch (value)
                {
                    case bool b:
                        w.WriteBoolean(key, b);
                        break;
                    case int n:
                        w.WriteNumber(key, n);
                        break;
                    case long n:
                        w.WriteNumber(key, n);
                        break;
                    default:
                        w.WriteString(key, value.ToString());
                        break;
                }
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        if (i.BackingFilename is not null)
        {
            w.WriteString("backing-filename", i.BackingFilename);
            w.WriteString("full-backing-filename", i.FullBackingFilename);
        }

        if (i.BackingFilenameFormat is not null)
        {
            w.WriteString("backing-filename-format", i.BackingFilenameFormat);
        }

        w.WriteBoolean("dirty-flag", i.DirtyFlag);
        w.WriteEndObject();
    }

    private static string Human(ImageInfo i)
    {
        var s = new System.Text.StringBuilder();
        s.Append($"image: {i.Filename}\n");
        s.Append($"file format: {i.Format}\n");
        s.Append($"virtual size: {ByteSize.Format(i.VirtualSize)} ({i.VirtualSize} bytes)\n");
        s.Append($"disk size: {ByteSize.Format(i.ActualSize)}\n");
        if (i.ClusterSize is { } cs)
        {
            s.Append($"cluster_size: {cs}\n");
        }

        if (i.BackingFilename is { } b)
        {
            s.Append(b == i.FullBackingFilename ? $"backing file: {b}\n" : $"backing file: {b} (actual path: {i.FullBackingFilename})\n");
        }

        if (i.BackingFilenameFormat is { } f)
        {
            s.Append($"backing file format: {f}\n");
        }

        if (i.Snapshots.Count > 0)
        {
            s.Append("Snapshot list:\n");
            s.Append($"{"ID",-9} {"TAG",-17} {"VM SIZE",7} {"DATE",19} {"VM CLOCK",12} {"ICOUNT",10}\n");
            foreach (SnapshotInfo sn in i.Snapshots)
            {
                string date = DateTimeOffset.FromUnixTimeSeconds(sn.DateSeconds).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
                ulong ms = sn.VmClockNanoseconds / 1_000_000;
                string clock = $"{ms / 3_600_000:00}:{ms / 60_000 % 60:00}:{ms / 1000 % 60:00}.{ms % 1000:000}";
                string size = ByteSize.Format((long)Math.Min(sn.VmStateSize, long.MaxValue));
                s.Append($"{sn.Id,-9} {sn.Name,-17} {size,7} {date,19} {clock,12} {(sn.Icount is { } ic ? ic.ToString() : ""),10}\n");
            }
        }

        if (i.FormatSpecific is { } fs)
        {
            s.Append("Format specific information:\n");
            foreach (var (key, value) in fs.Data)
            {
                string text = value is bool flag ? (flag ? "true" : "false") : value.ToString() ?? "";
                s.Append($"    {key.Replace('-', ' ')}: {text}\n");
            }
        }

        if (i.DirtyFlag)
        {
            s.Append("cleanly shut down: no (need-check set: a read-write open or 'qedfuse check -r all' repairs it)\n");
        }

        return s.ToString();
    }
}
