using System.Diagnostics;
using CommandLine;
using QedFuse.Cli.Help;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Verbs;

[Verb("unmount", aliases: ["umount"], HelpText = "Unmount a qedfuse mount and wait until every image is flushed and closed cleanly.")]
[UsageLine("qedfuse unmount [--timeout SECONDS] MOUNTPOINT")]
[Example("qedfuse unmount /mnt/x", "Unmount; returns once every image is flushed and closed cleanly")]
internal sealed class UnmountOptions
{
    [Value(0, MetaName = "MOUNTPOINT", Required = true)]
    public string MountPoint { get; set; } = "";

    [Option("timeout", Default = 120, HelpText = "Seconds to wait for the daemon to close the images.")]
    public int Timeout { get; set; }
}

internal static class UnmountVerb
{
    public static int Run(UnmountOptions o)
    {
        string mountPoint = MountTable.Canonical(o.MountPoint);
        if (!MountTable.IsOurMount(mountPoint))
        {
            throw new UsageException($"{mountPoint}: not a qedfuse mount");
        }

        int? pid = MountTable.ReadPid(mountPoint);
        if (pid is null || !MountTable.IsAlive(pid.Value))
        {
            MountTable.RunFusermount("-u", "-z", mountPoint);
            Console.Error.WriteLine($"qedfuse: {mountPoint}: the daemon had died; detached the stale mount. Its images were not closed cleanly: the next read-write open repairs them.");
            return Program.ExitFailure;
        }

        if (MountTable.RunFusermount("-u", mountPoint) != 0)
        {
            throw new UsageException($"{mountPoint}: cannot unmount: busy (a loop device, a mount on top, or open files?); release it and retry");
        }

        var deadline = Stopwatch.StartNew();
        while (MountTable.IsAlive(pid.Value))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(o.Timeout))
            {
                throw new UsageException($"{mountPoint}: unmounted, but daemon {pid} has not finished closing its images after {o.Timeout} s");
            }

            Thread.Sleep(20);
        }

        string errors = MountTable.ErrorFile(mountPoint);
        if (File.Exists(errors))
        {
            Console.Error.Write(string.Join("", File.ReadAllLines(errors).Select(l => $"qedfuse: {l}\n")));
            File.Delete(errors);
            return Program.ExitFailure;
        }

        return 0;
    }
}
