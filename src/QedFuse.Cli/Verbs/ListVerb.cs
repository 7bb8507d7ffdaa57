using CommandLine;
using QedFuse.Cli.Help;
using QedFuse.Cli.Mount;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("list", aliases: ["status"], HelpText = "Show every active qedfuse mount: mount point, mode, daemon pid, uptime and images.")]
[UsageLine("qedfuse list [--output=human|json]")]
[Example("qedfuse list", "One line per mount; nothing when there is none")]
[Example("qedfuse status --output=json", "The same for scripts (status is another name for list)")]
internal sealed class ListOptions
{
    [Option("output", Default = OutputFormat.Human, HelpText = "human or json.")]
    public OutputFormat Output { get; set; }
}

internal static class ListVerb
{
    public static int Run(ListOptions o)
    {
        List<ActiveMount> mounts = ActiveMount.All();
        DateTime now = DateTime.UtcNow;
        if (o.Output == OutputFormat.Json)
        {
            JsonOutput.Write(w =>
            {
                w.WriteStartArray();
                foreach (ActiveMount m in mounts)
                {
                    w.WriteStartObject();
                    w.WriteString("mountpoint", m.MountPoint);
                    w.WriteString("mode", m.ReadOnly ? "ro" : "rw");
                    w.WriteNumber("uid", m.OwnerUid);
                    if (m.Pid is { } pid)
                    {
                        w.WriteNumber("pid", pid);
                    }

                    if (m.Since is { } since)
                    {
                        w.WriteNumber("uptime-seconds", (long)(now - since).TotalSeconds);
                    }

                    w.WriteStartArray("images");
                    m.Images.ToList().ForEach(w.WriteStringValue);
                    w.WriteEndArray();
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            });
            return 0;
        }

        if (mounts.Count == 0)
        {
            return 0;
        }

        int width = Math.Max("MOUNTPOINT".Length, mounts.Max(m => m.MountPoint.Length)) + 2;
        Console.WriteLine($"{"MOUNTPOINT".PadRight(width)}{"MODE",-6}{"PID",-9}{"UPTIME",-10}IMAGES");
        foreach (ActiveMount m in mounts)
        {
            string uptime = m.Since is { } since ? Duration(now - since) : "-";
            Console.WriteLine($"{m.MountPoint.PadRight(width)}{(m.ReadOnly ? "ro" : "rw"),-6}{m.Pid?.ToString() ?? "-",-9}{uptime,-10}{string.Join(" ", m.Images)}");
        }

        return 0;
    }

    /// <summary>"45s", "12m05s", "3h07m", "2d04h".</summary>
    private static string Duration(TimeSpan t) => t.TotalSeconds switch
    {
        < 60 => $"{(int)Math.Max(0, t.TotalSeconds)}s",
        < 3600 => $"{(int)t.TotalMinutes}m{t.Seconds:00}s",
        < 86400 => $"{(int)t.TotalHours}h{t.Minutes:00}m",
        _ => $"{(int)t.TotalDays}d{t.Hours:00}h",
    };
}
