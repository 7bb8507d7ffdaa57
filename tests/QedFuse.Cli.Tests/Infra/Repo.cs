namespace QedFuse.Cli.Tests.Infra;

/// <summary>The repository the tests were built from: its packaging/ files and make targets.</summary>
public static class Repo
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "packaging", "mount.qedfuse")) && System.IO.File.Exists(Path.Combine(dir.FullName, "Makefile")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository (packaging/mount.qedfuse) above the test assembly");
    });

    public static string Root => RootPath.Value;

    public static string File(string relative) => Path.Combine(Root, relative);

    /// <summary>The mount(8) helper as make install writes it, pointing at the binary under test.</summary>
    public static string MountHelperText() =>
        System.IO.File.ReadAllText(File("packaging/mount.qedfuse")).Replace("@QEDFUSE@", ResolvedQedfuse());

    /// <summary>The binary behind the launcher (out/qedfuse is a symlink to out/bin/qedfuse).</summary>
    public static string ResolvedQedfuse() =>
        new FileInfo(Env.Qedfuse).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Env.Qedfuse;
}

/// <summary>
/// Runs a bash script in a private mount namespace (unshare -m): what it mounts there (an overlay
/// on /usr to install into, a FUSE mount, a tmpfs hiding .NET) no other process sees, and all of
/// it vanishes with the namespace. <c>set -eu</c>; the script's own trap cleans up its mounts.
/// </summary>
public static class PrivateNamespace
{
    public static RunResult Bash(string script, TimeSpan timeout) =>
        Run.Exec("unshare", ["-m", "--propagation", "private", "/bin/bash", "-euc", ReleaseOtherFuseMounts + script], timeout);

    /// <summary>
    /// The namespace starts as a copy of every mount on the machine, and a copy of a FUSE mount
    /// keeps its connection open: another test's daemon would not see its own unmount until this
    /// namespace ends. So the script first lets go of every FUSE mount it did not make.
    /// </summary>
    private const string ReleaseOtherFuseMounts = """
        awk '$3 ~ /^fuse(\.|blk|$)/ { print $2 }' /proc/self/mounts | while read -r m; do
            umount -l "$(printf '%b' "$m")" 2>/dev/null || true
        done

        """;

    /// <summary>Single-quoted for bash.</summary>
    public static string Q(string s) => "'" + s.Replace("'", "'\\''") + "'";
}
