using System.Diagnostics;
using CommandLine;
using QedFuse.Cli.Help;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Verbs;

[Verb("unmount", aliases: ["umount"], HelpText = "Unmount a qedfuse mount and wait until every image is flushed and closed cleanly.")]
[UsageLine("qedfuse unmount [--timeout SECONDS] MOUNTPOINT | -a")]
[Example("qedfuse unmount /mnt/x", "Unmount; returns once every image is flushed and closed cleanly")]
[Example("qedfuse unmount -a", "Every qedfuse mount you may unmount (root: all of them), each waited for")]
internal sealed class UnmountOptions
{
    [Value(0, MetaName = "MOUNTPOINT")]
    public string? MountPoint { get; set; }

    [Option('a', "all", HelpText = "Unmount every qedfuse mount you own (root: every one), as 'qedfuse list' shows them.")]
    public bool All { get; set; }

    [Option("timeout", Default = 120, HelpText = "Seconds to wait for each daemon to close its images.")]
    public int Timeout { get; set; }
}

internal static class UnmountVerb
{
    public static int Run(UnmountOptions o)
    {
        if (o.All == (o.MountPoint is not null))
        {
            throw new UsageException(o.All
                ? "give either -a or a MOUNTPOINT, not both"
                : $"missing MOUNTPOINT; usage: {VerbHelp.UsageLine(typeof(UnmountOptions))}");
        }

        if (!o.All)
        {
            return Unmount(MountTable.Canonical(o.MountPoint!), o.Timeout);
        }

        // Innermost first, so a mount on top of another never keeps it busy.
        uint self = ProcessIdentity.Current().Uid;
        int exit = 0;
        foreach (ActiveMount m in ActiveMount.All().Where(m => self == 0 || m.OwnerUid == self).Reverse())
        {
            try
            {
                exit = Math.Max(exit, Unmount(m.MountPoint, o.Timeout));
            }
            catch (Exception e) when (e is IOException or UsageException)
            {
                Console.Error.WriteLine($"qedfuse: {Program.OneLine(e.Message)}");
                exit = Program.ExitFailure;
            }
        }

        return exit;
    }

    private static int Unmount(string mountPoint, int timeout)
    {
        if (!MountTable.IsOurMount(mountPoint))
        {
            throw new UsageException($"{mountPoint}: not a qedfuse mount");
        }

        int? pid = MountTable.ReadPid(mountPoint);
        if (pid is null && IsResponsive(mountPoint))
        {
            // A live mount whose daemon left its record elsewhere (another user's runtime directory):
            // unmount it; that daemon closes its images on its own.
            return MountTable.RunFusermount("-u", mountPoint) == 0
                ? 0
                : throw new UsageException($"{mountPoint}: cannot unmount: busy, or not yours to unmount");
        }

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
            if (deadline.Elapsed > TimeSpan.FromSeconds(timeout))
            {
                throw new UsageException($"{mountPoint}: unmounted, but daemon {pid} has not finished closing its images after {timeout} s");
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

    /// <summary>Whether the mount answers (a mount whose daemon died fails with ENOTCONN).</summary>
    private static bool IsResponsive(string mountPoint)
    {
        try
        {
            Directory.EnumerateFileSystemEntries(mountPoint).Any();
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e is UnauthorizedAccessException;
        }
    }
}
