using System.Diagnostics;

namespace QedFuse.Cli.Tests.Infra;

/// <summary>
/// One `qedfuse mount` of the test's own images at the test's own mount point. The mount must be
/// live when the command returns; Dispose unmounts it with `qedfuse unmount`, falling back to
/// `fusermount3 -u -z` and a kill of the daemon, so a failing test never leaves a mount behind.
/// </summary>
public sealed class Mounted : IDisposable
{
    private bool _unmounted;

    private Mounted(string mountPoint, IReadOnlyList<string> images, RunResult mountResult)
    {
        MountPoint = mountPoint;
        Images = images;
        MountResult = mountResult;
        Pid = Mounts.ReadPid(mountPoint) ?? throw new Xunit.Sdk.XunitException($"no daemon pid recorded in {Mounts.PidFile(mountPoint)}");
    }

    public string MountPoint { get; }

    public IReadOnlyList<string> Images { get; }

    public RunResult MountResult { get; }

    public int Pid { get; }

    /// <summary>The raw file of image <paramref name="i"/> in the mount.</summary>
    public string File(int i = 0) => Path.Combine(MountPoint, Path.GetFileNameWithoutExtension(Images[i]) + ".raw");

    public static Mounted Start(string mountPoint, params string[] imagesThenOptions) => Start(mountPoint, imagesThenOptions, []);

    /// <summary>Mounts <paramref name="images"/> at <paramref name="mountPoint"/> with extra mount arguments.</summary>
    public static Mounted Start(string mountPoint, IReadOnlyList<string> images, IReadOnlyList<string> options)
    {
        RunResult r = TryMount(mountPoint, images, options);
        if (r.ExitCode != 0)
        {
            Mounts.ForceCleanup(mountPoint);
            throw new Xunit.Sdk.XunitException($"mount failed: {r}");
        }

        try
        {
            // Live when the command returns: no waiting here.
            Assert.True(Mounts.IsQedfuseMount(mountPoint), $"{mountPoint} is not a fuse.qedfuse mount right after `qedfuse mount` returned 0");
            foreach (string image in images)
            {
                string raw = Path.Combine(mountPoint, Path.GetFileNameWithoutExtension(image) + ".raw");
                Assert.True(System.IO.File.Exists(raw), $"{raw} missing right after mount returned");
            }

            return new Mounted(mountPoint, images, r);
        }
        catch
        {
            Mounts.ForceCleanup(mountPoint);
            throw;
        }
    }

    public static RunResult TryMount(string mountPoint, IReadOnlyList<string> images, IReadOnlyList<string> options)
    {
        var args = new List<string> { "mount" };
        args.AddRange(options);
        args.AddRange(images);
        args.Add(mountPoint);
        return Run.Exec(Env.Qedfuse, args, TimeSpan.FromSeconds(60));
    }

    /// <summary>`qedfuse unmount`; returns its result (the test asserts on it).</summary>
    public RunResult Unmount()
    {
        RunResult r = Run.Exec(Env.Qedfuse, ["unmount", MountPoint], TimeSpan.FromSeconds(90));
        _unmounted = true;
        if (r.ExitCode != 0)
        {
            Mounts.ForceCleanup(MountPoint, Pid);
        }

        return r;
    }

    /// <summary>Waits until the daemon process has exited.</summary>
    public void WaitForDaemonExit(TimeSpan timeout) =>
        Wait.Until(() => !Mounts.IsAlive(Pid), timeout, $"daemon {Pid} to exit");

    /// <summary>Marks the mount as gone (the test ended it another way) but still verifies that on Dispose.</summary>
    public void Forget() => _unmounted = true;

    public void Dispose()
    {
        if (!_unmounted)
        {
            _unmounted = true;
            RunResult? r = null;
            try
            {
                r = Run.Exec(Env.Qedfuse, ["unmount", MountPoint], TimeSpan.FromSeconds(90));
            }
            catch (TimeoutException)
            {
            }

            if (r?.ExitCode != 0)
            {
                Mounts.ForceCleanup(MountPoint, Pid);
            }
        }
        else
        {
            Mounts.ForceCleanup(MountPoint, Pid);
        }
    }
}

/// <summary>The mount table and the daemons' pid files, as the tests see them.</summary>
public static class Mounts
{
    public static string PidFile(string mountPoint) => Path.Combine("/run/qedfuse", Uri.EscapeDataString(mountPoint) + ".pid");

    public static int? ReadPid(string mountPoint)
    {
        try
        {
            return int.TryParse(File.ReadAllText(PidFile(mountPoint)).Trim(), out int pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static bool IsAlive(int pid)
    {
        try
        {
            // A zombie is dead for our purposes; a recycled pid is not qedfuse.
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z" && File.ReadAllText($"/proc/{pid}/cmdline").Contains("qedfuse", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The fstype of the topmost mount at <paramref name="mountPoint"/>, or null.</summary>
    public static string? FsType(string mountPoint)
    {
        string? type = null;
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            string[] f = line.Split(' ');
            int dash = Array.IndexOf(f, "-");
            if (f.Length > 4 && dash > 0 && dash + 1 < f.Length && f[4].Replace("\\040", " ") == mountPoint)
            {
                type = f[dash + 1];
            }
        }

        return type;
    }

    public static bool IsMounted(string mountPoint) => FsType(mountPoint) is not null;

    public static bool IsQedfuseMount(string mountPoint) => FsType(mountPoint) == "fuse.qedfuse";

    /// <summary>Detaches whatever qedfuse mount is left at <paramref name="mountPoint"/> and kills its daemon.</summary>
    public static void ForceCleanup(string mountPoint, int? pid = null)
    {
        pid ??= ReadPid(mountPoint);
        for (int i = 0; i < 5 && IsQedfuseMount(mountPoint); i++)
        {
            Run.Exec("fusermount3", ["-u", "-z", mountPoint], TimeSpan.FromSeconds(30));
        }

        if (pid is { } p && IsAlive(p))
        {
            try
            {
                Wait.Until(() => !IsAlive(p), TimeSpan.FromSeconds(10), $"daemon {p} to exit after its mount was detached");
            }
            catch (TimeoutException)
            {
                LibC.Kill(p, 9);
            }
        }
    }
}
