using QedFuse.Cli.Tests.Infra;
using QedFuse.Fuse;

namespace QedFuse.Cli.Tests;

/// <summary>uid=, gid=, umask= and the allow_other fallback (issue 13 item 13), checked as other users would meet them.</summary>
public sealed class OwnershipTests
{
    private const int Nobody = 65534;
    private const int Stranger = 65533;

    /// <summary>Runs a command as <paramref name="uid"/> (group the same number, no other groups).</summary>
    private static RunResult As(int uid, IEnumerable<string> command, string? runtimeDir = null)
    {
        var args = new List<string> { $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "env" };
        if (runtimeDir is not null)
        {
            args.Add($"XDG_RUNTIME_DIR={runtimeDir}");
        }

        args.AddRange(command);
        return Run.Exec("setpriv", args, TimeSpan.FromSeconds(90));
    }

    private static string Stat(string path) => Run.Exec("stat", "-c", "%u %g %a", path).Ok().Stdout.Trim();

    [Fact]
    public void Uid_gid_umask_set_owner_and_mode_and_the_kernel_enforces_them()
    {
        using var t = new TempDir();
        Run.Exec("chmod", "755", t.Path).Ok();
        Qemu.CreateQed(t["disk.qed"], "16M");
        Qemu.Io(t["disk.qed"], "write -P 0x3c 0 4k");
        using Mounted m = Mounted.Start(t.Dir("mnt"), [t["disk.qed"]], ["-o", $"allow_other,uid={Nobody},gid={Nobody},umask=027"]);
        Run.Exec("chmod", "755", m.MountPoint);

        Assert.Equal($"{Nobody} {Nobody} 640", Stat(m.File()));
        Assert.Equal($"{Nobody} {Nobody} 750", Stat(m.MountPoint));

        // The owner reads and writes; a stranger (neither owner nor group) is refused by the mode.
        RunResult owner = As(Nobody, ["sh", "-c", $"head -c 4096 {m.File()} | od -An -v -tx1 | tr -s ' ' '\\n' | sort -u | tr -d '\\n'; printf x | dd of={m.File()} bs=1 seek=8192 conv=notrunc status=none"]);
        Assert.True(owner.ExitCode == 0, $"{owner}");
        Assert.Equal("3c", owner.Stdout.Trim());
        Assert.Equal((byte)'x', ImageFile.ReadRange(m.File(), 8192, 1)[0]);
        RunResult stranger = As(Stranger, ["head", "-c", "1", m.File()]);
        Assert.NotEqual(0, stranger.ExitCode);
        Assert.Contains("Permission denied", stranger.Stderr);
        Assert.Equal(0, m.Unmount().ExitCode);
    }

    [Fact]
    public void Uid_without_allow_other_warns_that_only_the_mounting_user_gets_in()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["disk.qed"], "16M");
        using Mounted m = Mounted.Start(t.Dir("mnt"), [t["disk.qed"]], ["-o", $"uid={Nobody}"]);
        Assert.Contains($"uid={Nobody}: without -o allow_other only you can use this mount", m.MountResult.Stderr);
        Assert.Equal(0, m.Unmount().ExitCode);
    }

    /// <summary>
    /// Runs as a user other than root, in a private mount namespace where /dev/fuse is open to
    /// users (this machine's is root-only) and /etc/fuse.conf is the test's own file: first
    /// without user_allow_other, then with it. Nothing of this is visible outside.
    /// </summary>
    private const string AllowOtherScript = """
        set -u
        Q="$1"; D="$2"
        [ "$(findmnt -no PROPAGATION /)" = private ] || { echo "namespace is not private" >&2; exit 99; }
        mount -t tmpfs -o mode=0755 qedfuse-test "$D/dev" && mknod -m 666 "$D/dev/fuse" c 10 229 && mount --bind "$D/dev/fuse" /dev/fuse || exit 98
        printf '# no user_allow_other here\n' > "$D/fuse.conf" && mount --bind "$D/fuse.conf" /etc/fuse.conf || exit 97
        trap 'fusermount3 -u -z "$D/mnt" 2>/dev/null || true' EXIT
        as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups env XDG_RUNTIME_DIR="$D/run" "$@"; }
        for conf in without with; do
          echo "== $conf"
          [ $conf = with ] && printf 'user_allow_other\n' > "$D/fuse.conf"
          as_user "$Q" mount -o allow_other "$D/disk.qed" "$D/mnt" 2>&1; echo "mount rc=$?"
          grep -F " $D/mnt " /proc/self/mountinfo | sed 's/.* - //'
          stat -c 'root sees %s' "$D/mnt/disk.raw" 2>/dev/null || echo "root kept out"
          as_user stat -c 'user sees %s' "$D/mnt/disk.raw"
          as_user "$Q" unmount "$D/mnt" 2>&1; echo "unmount rc=$?"
        done
        """;

    [Fact]
    public void Allow_other_falls_back_with_a_message_for_a_user_when_fuse_conf_lacks_user_allow_other()
    {
        using var t = new TempDir();
        Run.Exec("chmod", "755", t.Path).Ok();
        Qemu.CreateQed(t["disk.qed"], "16M");
        t.Dir("mnt");
        t.Dir("run");
        t.Dir("dev");
        Run.Exec("chown", $"{Nobody}:{Nobody}", t["disk.qed"], t["mnt"], t["run"]).Ok();
        RunResult r = Run.Exec("unshare", ["-m", "--propagation", "private", "bash", "-c", AllowOtherScript, "allow-other-test", Env.Qedfuse, t.Path], TimeSpan.FromSeconds(240));
        Assert.True(r.ExitCode == 0, $"{r}");
        string without = r.Stdout.Split("== without\n")[1].Split("== with\n")[0];
        string with = r.Stdout.Split("== with\n")[1];

        string[] lines = Text.Lines(without);
        Assert.Equal($"qedfuse: allow_other ignored: {FuseConfig.DefaultPath} lacks the line user_allow_other, so only you can use this mount (as root, add that line to let other users in)", lines[0]);
        Assert.Equal("mount rc=0", lines[1]);
        Assert.StartsWith("fuse.qedfuse ", lines[2]);
        Assert.DoesNotContain("allow_other", lines[2]);
        Assert.Equal("root kept out", lines[3]);
        Assert.Equal($"user sees {16 << 20}", lines[4]);
        Assert.Equal("unmount rc=0", lines[5]);

        lines = Text.Lines(with);
        Assert.Equal("mount rc=0", lines[0]);
        Assert.Contains("allow_other", lines[1]);
        Assert.Equal($"root sees {16 << 20}", lines[2]);
        Assert.Equal($"user sees {16 << 20}", lines[3]);
        Assert.Equal("unmount rc=0", lines[4]);
        Assert.False(ImageFile.NeedCheck(t["disk.qed"]));
        Assert.Equal(0, Qemu.Check(t["disk.qed"]).ExitCode);
    }
}
