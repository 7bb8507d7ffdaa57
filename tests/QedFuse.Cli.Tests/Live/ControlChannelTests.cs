using System.Diagnostics;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.Live;

/// <summary>The control socket: where it is, who may use it, and one clear line whenever a verb cannot reach a daemon.</summary>
public sealed class ControlChannelTests
{
    private static string SocketOf(int pid) => Path.Combine("/run/qedfuse", $"{pid}.sock");

    [Fact]
    public void Verbs_on_something_that_is_not_a_live_mount_fail_with_one_line()
    {
        using var t = new TempDir();
        foreach (string[] verb in new[] { new[] { "stats" }, ["refresh"], ["throttle", "--iops", "5"] })
        {
            RunResult r = Env.Qf([verb[0], t.Dir("plain"), .. verb[1..]]);
            Assert.Equal(1, r.ExitCode);
            Assert.Single(Text.Lines(r.Stderr));
            Assert.Contains("not a qedfuse mount", r.Stderr);
        }

        Qemu.CreateQed(t["x.qed"], "64M");
        RunResult bad = Mounted.TryMount(t.Dir("m0"), [t["x.qed"]], ["-o", "iops=lots"]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Single(Text.Lines(bad.Stderr));
        Assert.Contains("iops=lots", bad.Stderr);
        Assert.False(Mounts.IsMounted(t["m0"]));
    }

    [Fact]
    public void Socket_is_owner_only_and_unmount_works_without_it()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        using var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]);
        string socket = SocketOf(m.Pid);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));

        RunResult unknown = Env.Qf("throttle", m.MountPoint, "nope.raw", "--iops", "5");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Single(Text.Lines(unknown.Stderr));
        Assert.Contains("has no file 'nope.raw'", unknown.Stderr);

        File.Delete(socket);
        RunResult gone = Env.Qf("stats", m.MountPoint);
        Assert.Equal(1, gone.ExitCode);
        Assert.Single(Text.Lines(gone.Stderr));
        Assert.Contains("does not answer", gone.Stderr);
        Assert.Equal(0, m.Unmount().ExitCode);
        Assert.False(ImageFile.NeedCheck(t["a.qed"]));
    }

    [Fact]
    public void A_dead_daemon_is_one_line()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        using var m = Mounted.Start(t.Dir("mnt"), [t["a.qed"]], ["-o", "ro"]);
        // Its fusermount3 auto_unmount helper goes first, so the dead daemon's mount stays behind.
        foreach (string stat in Directory.EnumerateDirectories("/proc").Select(p => Path.Combine(p, "stat")).Where(File.Exists))
        {
            string[] f;
            try
            {
                f = File.ReadAllText(stat).Split(' ');
            }
            catch (IOException)
            {
                continue;
            }

            if (f.Length > 3 && f[1] == "(fusermount3)" && f[3] == m.Pid.ToString())
            {
                LibC.Kill(int.Parse(f[0]), 9);
            }
        }

        LibC.Kill(m.Pid, 9);
        m.WaitForDaemonExit(TimeSpan.FromSeconds(30));
        m.Forget();
        Assert.True(Mounts.IsQedfuseMount(m.MountPoint), "the stale mount should still be there");
        RunResult r = Env.Qf("stats", m.MountPoint);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(Text.Lines(r.Stderr));
        // "is not running"; or, when another test's mount has meanwhile swept the dead daemon's record, "it died".
        Assert.Matches("is not running|it died", r.Stderr);
    }

    [Fact]
    public void Verbose_daemon_logs_each_control_request()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        string mnt = t.Dir("mnt");
        var psi = new ProcessStartInfo(Env.Qedfuse) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { "mount", "-f", "-v", t["a.qed"], mnt })
        {
            psi.ArgumentList.Add(a);
        }

        using Process daemon = Process.Start(psi)!;
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        daemon.ErrorDataReceived += (_, e) => { if (e.Data is not null) log.Enqueue(e.Data); };
        daemon.BeginErrorReadLine();
        try
        {
            Wait.Until(() => log.Any(l => l.Contains("mounted", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the foreground mount");
            Assert.Equal(0, Env.Qf("stats", mnt).ExitCode);
            Assert.Equal(0, Env.Qf("throttle", mnt, "--iops", "1000").ExitCode);
            Assert.Equal(1, Env.Qf("refresh", mnt).ExitCode);
            Wait.Until(() => log.Count(l => l.Contains("control: ", StringComparison.Ordinal)) >= 3, TimeSpan.FromSeconds(30), "three logged requests");
            Assert.Contains(log, l => l.Contains("control: stats: ok", StringComparison.Ordinal));
            Assert.Contains(log, l => l.Contains("control: throttle: ok", StringComparison.Ordinal));
            Assert.Contains(log, l => l.Contains("control: refresh: ", StringComparison.Ordinal) && l.Contains("read-write", StringComparison.Ordinal));
            Assert.Equal(0, Env.Qf("unmount", mnt).ExitCode);
            Assert.True(daemon.WaitForExit(60_000));
        }
        finally
        {
            Mounts.ForceCleanup(mnt, daemon.HasExited ? null : daemon.Id);
        }
    }
}
