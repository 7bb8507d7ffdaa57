using System.Diagnostics;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>Messages that say who holds an image and what to do instead (issue 13 items 8, 9).</summary>
public sealed class MessageTests
{
    [Fact]
    public void Lock_conflict_with_our_daemon_names_its_pid_and_mount_point_and_the_verbs_way_out()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["disk.qed"], "64M");
        using Mounted m = Mounted.Start(t.Dir("mnt"), t["disk.qed"]);
        string holder = $"in use by qedfuse (pid {m.Pid}, mounted at {m.MountPoint})";

        foreach (string verb in new[] { "info", "map", "check" })
        {
            RunResult r = Env.Qf(verb, t["disk.qed"]);
            Assert.NotEqual(0, r.ExitCode);
            string line = Assert.Single(Text.Lines(r.Stderr));
            Assert.Contains($"{t["disk.qed"]}: {holder}", line);
            Assert.Contains("add -U", line);
        }

        Assert.Equal(0, Env.Qf("info", "-U", t["disk.qed"]).ExitCode);
        RunResult repair = Env.Qf("check", "-r", "all", t["disk.qed"]);
        Assert.Contains("before repairing", Assert.Single(Text.Lines(repair.Stderr)));

        string mnt2 = t.Dir("mnt2");
        RunResult mount = Mounted.TryMount(mnt2, [t["disk.qed"]], []);
        Assert.NotEqual(0, mount.ExitCode);
        string mountLine = Assert.Single(Text.Lines(mount.Stderr));
        Assert.Contains(holder, mountLine);
        Assert.Contains("-o ro,force_share", mountLine);
        Assert.False(Mounts.IsMounted(mnt2));
        Assert.Equal(0, m.Unmount().ExitCode);
    }

    [Fact]
    public void Lock_conflict_with_qemu_names_qemu_and_its_pid()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["disk.qed"], "64M");
        var psi = new ProcessStartInfo("qemu-io", ["-f", "qed", t["disk.qed"]])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process qemu = Process.Start(psi)!;
        try
        {
            RunResult r = Env.Qf("info", t["disk.qed"]);
            Wait.Until(() => qemu.HasExited || (r = Env.Qf("info", t["disk.qed"])).ExitCode != 0, TimeSpan.FromSeconds(30), "qemu-io to lock the image");
            Assert.False(qemu.HasExited, "qemu-io exited early");
            string line = Assert.Single(Text.Lines(r.Stderr));
            Assert.True(line.Contains($"{t["disk.qed"]}: in use by QEMU (pid {qemu.Id}, qemu-io)"), line);
            Assert.Contains("add -U", line);
        }
        finally
        {
            qemu.StandardInput.Close(); // qemu-io quits at end of input
            if (!qemu.WaitForExit(30_000))
            {
                qemu.Kill();
            }
        }
    }

    [Fact]
    public void Image_on_a_read_only_file_system_asks_for_ro()
    {
        using var t = new TempDir();
        string src = t.Dir("src"), ro = t.Dir("ro"), mnt = t.Dir("mnt");
        Qemu.CreateQed(Path.Combine(src, "disk.qed"), "64M");
        Run.Exec("mount", "--bind", src, ro).Ok();
        try
        {
            Run.Exec("mount", "-o", "remount,bind,ro", ro).Ok();
            string image = Path.Combine(ro, "disk.qed");
            RunResult r = Mounted.TryMount(mnt, [image], []);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Equal($"qedfuse: {image}: read-only file system; mount it with -o ro", Assert.Single(Text.Lines(r.Stderr)));
            Assert.False(Mounts.IsMounted(mnt));

            using (Mounted m = Mounted.Start(mnt, [image], ["-o", "ro"]))
            {
                Assert.Equal(64L << 20, new FileInfo(m.File()).Length);
                Assert.Equal(0, m.Unmount().ExitCode);
            }

            RunResult repair = Env.Qf("check", "-r", "all", image);
            Assert.Contains("read-only file system; check it without -r", Assert.Single(Text.Lines(repair.Stderr)));
        }
        finally
        {
            Run.Exec("umount", ro);
        }
    }
}
