using CommandLine;
using QedFuse.Cli.Verbs;

namespace QedFuse.Cli.Mount;

/// <summary>
/// A live qedfuse mount as the system shows it: the kernel's mount table gives the mount point,
/// mode and owner; our pid record gives the daemon, whose command line names the images.
/// </summary>
internal sealed record ActiveMount(string MountPoint, bool ReadOnly, uint OwnerUid, string Source, int? Pid, DateTime? Since, IReadOnlyList<string> Images)
{
    /// <summary>Every fuse.qedfuse mount in this mount namespace, in mount order.</summary>
    public static List<ActiveMount> All()
    {
        var mounts = new List<ActiveMount>();
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            string[] f = line.Split(' ');
            int dash = Array.IndexOf(f, "-");
            if (dash < 5 || dash + 3 >= f.Length || f[dash + 1] != "fuse." + MountTable.Subtype)
            {
                continue;
            }

            string mountPoint = MountTable.Unescape(f[4]);
            bool readOnly = f[5].Split(',').Contains("ro");
            uint owner = f[dash + 3].Split(',').Where(o => o.StartsWith("user_id=", StringComparison.Ordinal))
                .Select(o => uint.TryParse(o[8..], out uint u) ? u : 0).FirstOrDefault();
            int? pid = MountTable.ReadPid(mountPoint) is { } p && MountTable.IsAlive(p) ? p : null;
            DateTime? since = pid is null ? null : File.GetLastWriteTimeUtc(MountTable.PidFile(mountPoint));
            string source = MountTable.Unescape(f[dash + 2]);
            mounts.Add(new ActiveMount(mountPoint, readOnly, owner, source, pid, since, pid is { } daemon ? ImagesOf(daemon) ?? [source] : [source]));
        }

        return mounts;
    }

    /// <summary>The images a daemon serves, from its command line (a qedfuse mount's), resolved against its working directory.</summary>
    private static List<string>? ImagesOf(int pid)
    {
        try
        {
            string[] argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            int verb = Array.IndexOf(argv, "mount");
            if (verb < 0)
            {
                return null;
            }

            string cwd = new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget ?? "/";
            using var parser = new Parser(s => s.HelpWriter = null);
            return parser.ParseArguments<MountOptions>(argv[(verb + 1)..]).MapResult<MountOptions, List<string>?>(
                o => o.Paths.SkipLast(1).Select(p => Path.GetFullPath(p, cwd)).ToList(),
                _ => null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
