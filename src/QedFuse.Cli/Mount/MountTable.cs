using QedFuse.Fuse;

namespace QedFuse.Cli.Mount;

/// <summary>
/// Where a mount's daemon is recorded (a pid file per mount point under /run/qedfuse) and
/// which mounts are ours (/proc/self/mountinfo, file system type fuse.qedfuse).
/// </summary>
internal static class MountTable
{
    public const string Subtype = "qedfuse";

    public static string RuntimeDir
    {
        get
        {
            uint uid = ProcessIdentity.Current().Uid;
            if (uid == 0)
            {
                return "/run/qedfuse";
            }

            string? xdg = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
            return string.IsNullOrEmpty(xdg) ? $"/tmp/qedfuse-{uid}" : Path.Combine(xdg, "qedfuse");
        }
    }

    /// <summary>
    /// The one spelling of a mount point the kernel shows in mountinfo (and our pid file is
    /// keyed by): absolute, symlinks resolved, no "." / ".." / trailing slash. A path that does
    /// not exist is only made absolute.
    /// </summary>
    public static string Canonical(string path)
    {
        string full = Path.GetFullPath(path);
        string resolved = "/";
        int hops = 0;
        var pending = new Stack<string>(full.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse());
        while (pending.TryPop(out string? part))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                resolved = Path.GetDirectoryName(resolved) ?? "/";
                continue;
            }

            string next = Path.Combine(resolved, part);
            FileSystemInfo info = new FileInfo(next);
            if (info.LinkTarget is { } target)
            {
                if (++hops > 40)
                {
                    return full.Length > 1 ? full.TrimEnd('/') : full;
                }

                // Re-walk the link target, relative to the directory holding the link.
                foreach (string p in target.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse())
                {
                    pending.Push(p);
                }

                if (target.StartsWith('/'))
                {
                    resolved = "/";
                }

                continue;
            }

            resolved = next;
        }

        return resolved;
    }

    public static string PidFile(string mountPoint) => Path.Combine(RuntimeDir, Uri.EscapeDataString(mountPoint) + ".pid");

    /// <summary>Written by a daemon whose images did not close cleanly; read (and removed) by unmount.</summary>
    public static string ErrorFile(string mountPoint) => PidFile(mountPoint) + ".error";

    /// <summary>
    /// The control socket of daemon <paramref name="pid"/> (qedfuse stats/throttle/refresh): named
    /// by pid, not mount point, to stay within the 108 bytes a socket path may have; clients find
    /// the pid through the mount point's pid file, as unmount does.
    /// </summary>
    public static string SocketFile(int pid) => Path.Combine(RuntimeDir, $"{pid}.sock");

    public static void WritePid(string mountPoint)
    {
        Directory.CreateDirectory(RuntimeDir);
        RemoveStaleRecords();
        // Written whole and renamed into place: a concurrent sweep never sees it half written.
        string temp = $"{PidFile(mountPoint)}.tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, $"{Environment.ProcessId}\n");
        File.Move(temp, PidFile(mountPoint), overwrite: true);
        File.Delete(ErrorFile(mountPoint));
    }

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

    /// <summary>A daemon killed outright (SIGKILL, power loss) cannot remove its pid file: sweep those.</summary>
    private static void RemoveStaleRecords()
    {
        foreach (string file in Directory.EnumerateFiles(RuntimeDir, "*.pid"))
        {
            try
            {
                if (int.TryParse(File.ReadAllText(file).Trim(), out int pid) && !IsAlive(pid))
                {
                    File.Delete(file);
                    File.Delete(SocketFile(pid));
                }
            }
            catch (IOException)
            {
                // another daemon is writing or removing it: not ours to judge
            }
        }
    }

    /// <summary>Whether <paramref name="pid"/> is a live qedfuse process (not a recycled pid).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            string cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains("qedfuse", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Whether <paramref name="mountPoint"/> (absolute) is a mount of type fuse.qedfuse.</summary>
    public static bool IsOurMount(string mountPoint) => FindMount(mountPoint) == "fuse." + Subtype;

    /// <summary>The file system type mounted at <paramref name="mountPoint"/>, or null.</summary>
    public static string? FindMount(string mountPoint)
    {
        string? type = null;
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            string[] f = line.Split(' ');
            int dash = Array.IndexOf(f, "-");
            if (f.Length > 4 && dash > 0 && dash + 1 < f.Length && Unescape(f[4]) == mountPoint)
            {
                type = f[dash + 1]; // the last match is the one on top
            }
        }

        return type;
    }

    public static int RunFusermount(params string[] args)
    {
        int exit = Fusermount.Run(args, out string err);
        if (exit != 0 && err.Length > 0)
        {
            Log.Info($"fusermount3 {string.Join(' ', args)}: {err}");
        }

        return exit;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string Unescape(string s) =>
        s.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\");
}
