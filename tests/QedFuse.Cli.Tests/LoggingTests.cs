using System.Diagnostics;
using System.Text;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>
/// Where a mount's messages go when there is no syslog (this machine has no /dev/log): the
/// --log-file keeps the start, repairs, errors and unmount of a background mount; -v in the
/// foreground prints every event on stderr.
/// </summary>
public sealed class LoggingTests
{
    private static readonly System.Text.RegularExpressions.Regex Stamped =
        new(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d qedfuse\[\d+\]: ");

    [Fact]
    public void LogFileKeepsStartRepairErrorsAndUnmountOfABackgroundMount()
    {
        using var t = new TempDir();
        const int cluster = 65536;
        string repaired = t["repaired.qed"], corrupt = t["corrupt.qed"], log = t["logs/mount.log"];
        Directory.CreateDirectory(t["logs"]);
        Qemu.CreateQed(repaired, "64M", cluster, 4);
        Qemu.Io(repaired, "write -P 0x11 0 64k");
        SetNeedCheck(repaired); // as a crash leaves it: the read-write open repairs and says so
        Qemu.CreateQed(corrupt, "64M", cluster, 4);
        Qemu.Io(corrupt, "write -P 0x22 1M 64k");
        long l2 = (long)ImageFile.ReadU64(corrupt, (long)ImageFile.ReadU64(corrupt, 40));
        ImageFile.WriteU64(corrupt, l2 + ((1 << 20) / cluster) * 8, (ulong)(new FileInfo(corrupt).Length + 100L * cluster));
        string mnt = t.Dir("mnt");

        using (var m = Mounted.Start(mnt, [repaired, corrupt], ["--log-file", log]))
        {
            Assert.Contains("need-check", m.MountResult.Stderr); // the caller still sees the repair
            RunResult dd = Run.Exec("dd", $"if={m.File(1)}", "of=/dev/null", "bs=64k", "skip=16", "count=1", "iflag=direct", "status=none");
            Assert.NotEqual(0, dd.ExitCode);
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        // A second mount of an image already mounted read-write fails, and the log says why.
        using (var first = Mounted.Start(mnt, repaired))
        {
            string other = t.Dir("mnt2");
            RunResult refused = Mounted.TryMount(other, [repaired], ["--log-file", log]);
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Equal(0, first.Unmount().ExitCode);
        }

        string[] lines = File.ReadAllLines(log);
        Assert.All(lines, l => Assert.Matches(Stamped, l));
        string text = string.Join('\n', lines);
        Assert.Contains($"{repaired}: was not closed cleanly (need-check set); checked", text);
        Assert.Contains($"mounted {repaired}, {corrupt} at {mnt} (read-write)", text);
        Assert.Contains($"error: {corrupt}", text);
        Assert.Contains("reads of that region fail with EIO", text);
        Assert.Contains($"unmounted {mnt}", text);
        string refusal = lines[^1];
        Assert.Contains("error: ", refusal);
        Assert.Contains(repaired, refusal);
        Assert.True(Array.FindIndex(lines, l => l.Contains("need-check")) < Array.FindIndex(lines, l => l.Contains("mounted "))
            && Array.FindIndex(lines, l => l.Contains("mounted ")) < Array.FindIndex(lines, l => l.Contains("unmounted ")), text);
    }

    [Fact]
    public void VerboseForegroundMountLogsEveryEventToStderr()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "16M");
        string mnt = t.Dir("mnt");

        string quiet = RunForegroundUntilUnmounted(img, mnt, []);
        Assert.DoesNotContain("mounted", quiet);

        string verbose = RunForegroundUntilUnmounted(img, mnt, ["-v"]);
        string[] expected = [$"qedfuse: opened {img} (read-write)", $"qedfuse: mounted {img} at {mnt} (read-write)", $"qedfuse: closed {img} cleanly", $"qedfuse: unmounted {mnt}"];
        int at = -1;
        foreach (string e in expected)
        {
            int next = verbose.IndexOf(e, StringComparison.Ordinal);
            Assert.True(next > at, $"'{e}' missing or out of order in:\n{verbose}");
            at = next;
        }
    }

    [Fact]
    public void BackgroundMountWithoutSyslogLogsToTheKernelLog()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "16M");
        string mnt = t.Dir("mnt");
        string qf = Repo.ResolvedQedfuse();
        // No syslog daemon in the namespace, whether or not the machine has one.
        string script = $$"""
            mnt={{PrivateNamespace.Q(mnt)}}
            trap 'umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true' EXIT
            if [ -e /dev/log ]; then mount --bind /dev/null /dev/log; fi
            {{PrivateNamespace.Q(qf)}} mount {{PrivateNamespace.Q(img)}} "$mnt"
            echo "PID $(cat {{PrivateNamespace.Q(Mounts.PidFile(mnt))}})"
            {{PrivateNamespace.Q(qf)}} unmount "$mnt"
            """;
        RunResult r = PrivateNamespace.Bash(script, TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.ToString());
        string pid = Text.Lines(r.Stdout).Single(l => l.StartsWith("PID ", StringComparison.Ordinal))[4..];
        string expected = $"qedfuse[{pid}]: unmounted {mnt}";
        Wait.Until(() => Run.Exec("dmesg").Ok().Stdout.Contains(expected, StringComparison.Ordinal), TimeSpan.FromSeconds(10), $"'{expected}' in the kernel log");
    }

    /// <summary>Runs `qedfuse mount -f`, unmounts it with `qedfuse unmount` once live, returns its stderr.</summary>
    private static string RunForegroundUntilUnmounted(string img, string mnt, string[] extra)
    {
        var psi = new ProcessStartInfo(Env.Qedfuse) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["mount", "-f", .. extra, img, mnt])
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        var err = new StringBuilder();
        p.ErrorDataReceived += (_, e) => { lock (err) { err.AppendLine(e.Data); } };
        p.OutputDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        string Stderr() { lock (err) { return err.ToString(); } }
        try
        {
            Wait.Until(() => Mounts.IsQedfuseMount(mnt) || p.HasExited, TimeSpan.FromSeconds(30), "the foreground mount");
            Assert.False(p.HasExited, $"foreground mount exited: {Stderr()}");
            Assert.Equal(0, Env.Qf("unmount", mnt).ExitCode);
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(30)), "foreground mount did not exit after unmount");
            p.WaitForExit(); // drains the stderr reader
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {Stderr()}");
            return Stderr();
        }
        finally
        {
            if (!p.HasExited)
            {
                Mounts.ForceCleanup(mnt, p.Id);
                p.Kill();
            }
        }
    }

    private static void SetNeedCheck(string qed)
    {
        ulong features = ImageFile.ReadU64(qed, 16);
        ImageFile.WriteU64(qed, 16, features | ImageFile.NeedCheckBit);
    }
}
