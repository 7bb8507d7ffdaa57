using System.Text.Json;
using CommandLine;
using QedFuse.Cli.Live;
using QedFuse.Cli.Output;
using QedFuse.Cli.Help;

namespace QedFuse.Cli.Verbs;

[Verb("stats", HelpText = "Show what each file of a live mount has done since it was mounted: requests, bytes, latency, metadata work, throttling.")]
[UsageLine("qedfuse stats MOUNTPOINT [--output=human|json]")]
[Example("qedfuse stats /mnt/x", "Requests, bytes and latency of each file since mount")]
[Example("qedfuse stats --output=json /mnt/x", "The same with QEMU's query-blockstats key names")]
internal sealed class StatsOptions
{
    [Value(0, MetaName = "MOUNTPOINT", Required = true)]
    public string MountPoint { get; set; } = "";

    [Option("output", Default = OutputFormat.Human, HelpText = "human (a table per file) or json. " + StatsReport.KeyHelp)]
    public OutputFormat Output { get; set; }
}

internal static class StatsVerb
{
    public static int Run(StatsOptions o)
    {
        JsonElement result = ControlClient.Request(o.MountPoint, "stats");
        if (o.Output == OutputFormat.Json)
        {
            JsonOutput.Write(w => result.WriteTo(w));
        }
        else
        {
            StatsReport.PrintHuman(result, Console.Out);
        }

        return 0;
    }
}
