using CommandLine;
using QedFuse.Block;
using QedFuse.Cli.Help;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("check", HelpText = "Check an image's metadata for consistency, optionally repairing it (like qemu-img check). Exit: 0 clean, 1 check failed, 2 corruptions, 3 leaks only, 63 format cannot be checked.")]
[UsageLine("qedfuse check [-r leaks|all] [--output=human|json] [-U] IMAGE")]
[Example("qedfuse check disk.qed", "Report leaks and corruptions; change nothing")]
[Example("qedfuse check -r all disk.qed", "Repair: reclaim leaked clusters and clear table entries that point outside the file")]
internal sealed class CheckOptions
{
    [Option('r', "repair", HelpText = "Repair: 'leaks' gives back leaked clusters at the end of the file; 'all' also clears table entries that point outside the file.")]
    public string? Repair { get; set; }

    [Option("output", Default = OutputFormat.Human, HelpText = "human or json.")]
    public OutputFormat Output { get; set; }

    [Option('U', "force-share", HelpText = "Check even while another program writes the image (results may be inconsistent; no repair).")]
    public bool ForceShare { get; set; }

    [Option('p', "progress", HelpText = "Show progress (useful on large images).")]
    public bool Progress { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true)]
    public string Image { get; set; } = "";
}

internal static class CheckVerb
{
    public static int Run(CheckOptions o)
    {
        CheckRepair repair = o.Repair switch
        {
            null => CheckRepair.None,
            "leaks" => CheckRepair.Leaks,
            "all" => CheckRepair.All,
            _ => throw new UsageException($"invalid -r '{o.Repair}': use 'leaks' or 'all'"),
        };
        if (repair != CheckRepair.None && o.ForceShare)
        {
            throw new UsageException("-r and -U exclude each other: an image in use elsewhere cannot be repaired");
        }

        CheckResult r;
        using (IBlockImage image = ImageOpener.Open(o.Image, new ImageOpenOptions
        {
            ReadOnly = repair == CheckRepair.None,
            SkipRepair = true,
            ForceShare = o.ForceShare,
        }))
        {
            using var run = new LongRun(o.Progress, interruptible: false);
            r = image.Check(repair, run.Progress) with { Filename = o.Image };
            run.Finish();
        }

        if (!r.Supported)
        {
            Console.Error.WriteLine($"qedfuse: {o.Image}: the {r.Format} format does not support checks");
            return r.ExitCode;
        }

        if (o.Output == OutputFormat.Json)
        {
            WriteJson(r);
        }
        else
        {
            WriteHuman(r);
        }

        return r.ExitCode;
    }

    private static void WriteJson(CheckResult r) => JsonOutput.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("filename", r.Filename);
        w.WriteString("format", r.Format);
        w.WriteNumber("check-errors", r.CheckErrors);
        void Nonzero(string key, long v)
        {
            if (v != 0)
            {
                w.WriteNumber(key, v);
            }
        }

        Nonzero("image-end-offset", r.ImageEndOffset);
        Nonzero("corruptions", r.Corruptions);
        Nonzero("leaks", r.Leaks);
        Nonzero("corruptions-fixed", r.CorruptionsFixed);
        Nonzero("leaks-fixed", r.LeaksFixed);
        Nonzero("total-clusters", r.TotalClusters);
        Nonzero("allocated-clusters", r.AllocatedClusters);
        Nonzero("fragmented-clusters", r.FragmentedClusters ?? 0);
        Nonzero("compressed-clusters", r.CompressedClusters ?? 0);
        w.WriteEndObject();
    });

    private static void WriteHuman(CheckResult r)
    {
        foreach (string m in r.Messages)
        {
            Console.WriteLine(m);
        }

        if (r.CorruptionsFixed > 0 || r.LeaksFixed > 0)
        {
            Console.WriteLine($"The following inconsistencies were found and repaired:\n\n    {r.LeaksFixed} leaked clusters\n    {r.CorruptionsFixed} corruptions\n");
        }

        if (r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0)
        {
            Console.WriteLine("No errors were found on the image.");
        }

        if (r.Corruptions > 0)
        {
            Console.WriteLine($"\n{r.Corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.");
        }

        if (r.Leaks > 0)
        {
            Console.WriteLine($"\n{r.Leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.");
        }

        if (r.CheckErrors > 0)
        {
            Console.WriteLine($"\n{r.CheckErrors} internal errors have occurred during the check.");
        }

        if (r.TotalClusters > 0 && r.AllocatedClusters > 0)
        {
            string allocated = $"{r.AllocatedClusters}/{r.TotalClusters} = {100.0 * r.AllocatedClusters / r.TotalClusters:0.00}% allocated";
            Console.WriteLine(r.FragmentedClusters is { } fragmented && r.CompressedClusters is { } compressed
                ? $"{allocated}, {100.0 * fragmented / r.AllocatedClusters:0.00}% fragmented, {100.0 * compressed / r.AllocatedClusters:0.00}% compressed clusters"
                : $"{allocated} clusters");
        }

        if (r.ImageEndOffset > 0)
        {
            Console.WriteLine($"Image end offset: {r.ImageEndOffset}");
        }
    }
}
