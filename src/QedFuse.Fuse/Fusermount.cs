using System.Diagnostics;

namespace QedFuse.Fuse;

/// <summary>
/// libfuse's setuid helper fusermount3, which unmounts for callers that may not call umount2.
/// Found where Debian's fuse3 puts it, and only then through PATH: mount(8), systemd and
/// <c>env -i</c> start us with no PATH at all.
/// </summary>
public static class Fusermount
{
    private const string Name = "fusermount3";

    private static readonly string[] KnownDirs = ["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"];

    /// <summary>The absolute path of fusermount3; throws <see cref="IOException"/> when fuse3 is not installed.</summary>
    public static string Path
    {
        get
        {
            IEnumerable<string> dirs = KnownDirs.Concat(
                (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
            foreach (string dir in dirs)
            {
                string candidate = System.IO.Path.Combine(dir, Name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            throw new IOException($"{Name} not found (install the fuse3 package)");
        }
    }

    /// <summary>Runs fusermount3 with <paramref name="args"/>; returns its exit code and what it printed on stderr.</summary>
    public static int Run(IEnumerable<string> args, out string stderr)
    {
        var psi = new ProcessStartInfo(Path) { UseShellExecute = false, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new IOException($"cannot run {psi.FileName}");
        stderr = p.StandardError.ReadToEnd().Trim();
        p.WaitForExit();
        return p.ExitCode;
    }
}
