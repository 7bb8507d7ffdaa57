using System.Text.Json;
using CommandLine;
using CommandLine.Text;
using QedFuse.Cli.Live;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("stats", HelpText = "Show what each file of a live mount has done since it was mounted: requests, bytes, latency, metadata work, throttling.")]
internal sealed class StatsOptions
{
    [Value(0, MetaName = "MOUNTPOINT", Required = true)]
    public string MountPoint { get; set; } = "";

    [Option("output", Default = OutputFormat.Human, HelpText = "human (a table per file) or json. " + StatsReport.KeyHelp)]
    public OutputFormat Output { get; set; }

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("Counters of every file of the mount", new StatsOptions { MountPoint = "/mnt/x" }),
        new("As JSON, for scripts", new StatsOptions { MountPoint = "/mnt/x", Output = OutputFormat.Json }),
    ];
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
