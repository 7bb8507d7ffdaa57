namespace QedFuse.Block;

/// <summary>
/// A process holding QEMU-protocol locks on an image. OFD locks carry no pid (/proc/locks shows
/// -1), so holders are found the long way: every /proc/PID/fd link to the image whose fdinfo
/// lists a lock on the byte in question. Only a process we may inspect can be named.
/// </summary>
public sealed record LockHolder(int Pid, string Command)
{
    /// <summary>A qedfuse daemon (or any qedfuse process).</summary>
    public bool IsQedfuse { get; init; }

    public bool IsQemu => Command.StartsWith("qemu", StringComparison.Ordinal);

    /// <summary>"qedfuse (pid 12)", "QEMU (pid 34, qemu-system-x86_64)", "vim (pid 56)"; <paramref name="detail"/> goes inside the parentheses.</summary>
    public string Describe(string? detail = null)
    {
        string more = detail is null ? "" : $", {detail}";
        return IsQedfuse ? $"qedfuse (pid {Pid}{more})"
            : IsQemu ? $"QEMU (pid {Pid}, {Command}{more})"
            : $"{Command} (pid {Pid}{more})";
    }

    /// <summary>How long an error message may wait for its holder's name.</summary>
    private static readonly TimeSpan SearchLimit = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The first other process holding a lock on byte <paramref name="lockByte"/> of <paramref name="path"/>,
    /// or null. A /proc read can block (on a process stuck in a page fault, say): the search runs
    /// on a background thread and is abandoned after <see cref="SearchLimit"/>.
    /// </summary>
    internal static LockHolder? Find(string path, long lockByte)
    {
        LockHolder? found = null;
        var search = new Thread(() => found = Search(path, lockByte)) { IsBackground = true, Name = "lock-holder" };
        search.Start();
        return search.Join(SearchLimit) ? found : null;
    }

    private static LockHolder? Search(string path, long lockByte)
    {
        string target;
        try
        {
            target = System.IO.Path.GetFullPath(new FileInfo(path).ResolveLinkTarget(true)?.FullName ?? path);
        }
        catch (IOException)
        {
            return null;
        }

        foreach (string procDir in SafeEnumerate("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(procDir), out int pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            // fdinfo's entries are plain files: listing them never touches what the fds point to.
            foreach (string info in SafeEnumerate(System.IO.Path.Combine(procDir, "fdinfo")))
            {
                try
                {
                    if (Native.LibC.ReadLink($"{procDir}/fd/{System.IO.Path.GetFileName(info)}") != target || !HoldsLock(File.ReadAllText(info), lockByte))
                    {
                        continue;
                    }

                    // The executable's name, whole (comm is cut at 15 characters: "qemu-storage-da"); only
                    // "dotnet" running qedfuse.dll needs the command line, which can block.
                    string command = System.IO.Path.GetFileName(Native.LibC.ReadLink($"{procDir}/exe") ?? File.ReadAllText($"{procDir}/comm").Trim());
                    bool qedfuse = command == "qedfuse" || (command == "dotnet" && RunsQedfuse(File.ReadAllText($"{procDir}/cmdline")));
                    return new LockHolder(pid, command) { IsQedfuse = qedfuse };
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // gone meanwhile, or not ours to look at
                }
            }
        }

        return null;
    }

    /// <summary>fdinfo lists the locks of that open file description: "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:123 100 101".</summary>
    private static bool HoldsLock(string fdinfo, long lockByte)
    {
        foreach (string line in fdinfo.Split('\n'))
        {
            string[] f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 3 && f[0] == "lock:" && long.TryParse(f[^2], out long start)
                && (f[^1] == "EOF" ? long.MaxValue : long.TryParse(f[^1], out long end) ? end : -1) is var last
                && start <= lockByte && lockByte <= last)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The program itself (argv[0]), or the assembly dotnet runs (argv[1]), is qedfuse; an argument that merely mentions it is not.</summary>
    private static bool RunsQedfuse(string cmdline)
    {
        string[] argv = cmdline.Split('\0');
        return System.IO.Path.GetFileName(argv[0]) == "qedfuse"
            || (argv.Length > 1 && System.IO.Path.GetFileName(argv[1]) == "qedfuse.dll");
    }

    private static IEnumerable<string> SafeEnumerate(string dir)
    {
        try
        {
            return Directory.GetFileSystemEntries(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
