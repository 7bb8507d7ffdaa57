using System.Diagnostics;

namespace QedFuse.Reliability.Tests.Support;

/// <summary>The qedfuse launcher under test: env QEDFUSE, else the repository's out/qedfuse.</summary>
public static class Qedfuse
{
    private static readonly Lazy<string> LauncherPath = new(Find);

    public static string Launcher => LauncherPath.Value;

    public static ProcResult Run(params string[] args) => Proc.Run(Launcher, args, TimeSpan.FromSeconds(120));

    private static string Find()
    {
        string? env = Environment.GetEnvironmentVariable("QEDFUSE");
        if (!string.IsNullOrEmpty(env))
        {
            return File.Exists(env) ? env : throw new FileNotFoundException($"QEDFUSE={env} does not exist");
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "out", "qedfuse");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("qedfuse launcher not found: run 'make build' or set QEDFUSE");
    }

    /// <summary>The pid file the daemon of <paramref name="mountPoint"/> writes (as root: /run/qedfuse).</summary>
    public static string PidFile(string mountPoint) =>
        Path.Combine("/run/qedfuse", Uri.EscapeDataString(Path.GetFullPath(mountPoint)) + ".pid");

    public static int? DaemonPid(string mountPoint)
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

    public static bool IsMounted(string dir)
    {
        string full = Path.GetFullPath(dir);
        return File.ReadLines("/proc/self/mountinfo").Any(line => line.Split(' ') is { Length: > 4 } f && f[4] == full);
    }

    /// <summary>Lazy-detaches <paramref name="dir"/> if it is still mounted (only ever called on our own mount points).</summary>
    public static void ForceUnmount(string dir)
    {
        if (IsMounted(dir))
        {
            try { Proc.Run("fusermount3", ["-u", "-z", dir], TimeSpan.FromSeconds(15)); } catch (TimeoutException) { }
        }
    }
}

/// <summary>A fresh temp directory, deleted with everything in it (after any mount in it is gone).</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "qedfuse-rel-", bool memory = false)
    {
        // tmpfs (/dev/shm) where fsync costs nothing: for tests that only need many small files.
        Path = memory && Directory.Exists("/dev/shm")
            ? Directory.CreateDirectory(System.IO.Path.Combine("/dev/shm", prefix + Guid.NewGuid().ToString("N")[..12])).FullName
            : Directory.CreateTempSubdirectory(prefix).FullName;
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public string NewDir(string name) => Directory.CreateDirectory(this[name]).FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// One qedfuse mount (background daemon). Dispose always leaves nothing mounted and no daemon
/// running: qedfuse unmount, then fusermount3 -u -z, then SIGKILL of the daemon we started.
/// </summary>
public sealed class QedfuseMount : IDisposable
{
    private QedfuseMount(string dir, string raw, int pid)
    {
        Dir = dir;
        RawFile = raw;
        Pid = pid;
    }

    public string Dir { get; }

    /// <summary>The raw file of the first image.</summary>
    public string RawFile { get; }

    public int Pid { get; }

    public bool Unmounted { get; private set; }

    /// <summary>Mounts or throws with qedfuse's output; <paramref name="extra"/> goes before the paths.</summary>
    public static QedfuseMount Start(string image, string dir, params string[] extra)
    {
        var r = TryStart(image, dir, out QedfuseMount? m, extra);
        return m ?? throw new InvalidOperationException($"qedfuse mount {image} {dir} failed: {r}");
    }

    public static ProcResult TryStart(string image, string dir, out QedfuseMount? mount, params string[] extra)
    {
        mount = null;
        ProcResult r = Qedfuse.Run(["mount", .. extra, image, dir]);
        if (r.ExitCode != 0)
        {
            // A failed mount must leave nothing behind; make sure, without hiding it from the caller.
            if (Qedfuse.IsMounted(dir))
            {
                KillDaemon(dir);
                Qedfuse.ForceUnmount(dir);
            }

            return r;
        }

        int pid = Qedfuse.DaemonPid(dir) ?? -1;
        string raw = System.IO.Path.Combine(dir, System.IO.Path.GetFileNameWithoutExtension(image) + ".raw");
        mount = new QedfuseMount(dir, raw, pid);
        return r;
    }

    /// <summary>Peak resident set size of the daemon so far (VmHWM), in bytes.</summary>
    public long PeakRss()
    {
        foreach (string line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
            }
        }

        throw new InvalidOperationException("no VmHWM");
    }

    /// <summary>qedfuse unmount; returns its result (the mount is gone either way once Dispose ran).</summary>
    public ProcResult Unmount()
    {
        ProcResult r = Qedfuse.Run("unmount", Dir);
        Unmounted = true;
        return r;
    }

    public void Dispose()
    {
        try
        {
            if (!Unmounted && Qedfuse.IsMounted(Dir))
            {
                try { Unmount(); } catch (TimeoutException) { }
            }
        }
        finally
        {
            Qedfuse.ForceUnmount(Dir);
            if (Pid > 0 && !Proc.WaitUntil(() => !Proc.IsAlive(Pid), TimeSpan.FromSeconds(30)))
            {
                try { Process.GetProcessById(Pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
            }
        }
    }

    private static void KillDaemon(string dir)
    {
        if (Qedfuse.DaemonPid(dir) is { } pid && Proc.IsAlive(pid))
        {
            try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        }
    }
}
