using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>How a mount ends: SIGKILL (crash), fusermount3 -u, SIGTERM.</summary>
public sealed class LifecycleTests
{
    private const int SIGKILL = 9, SIGTERM = 15;

    [Fact]
    public void CrashAfterFsyncThenRemountRepairsAndKeepsFsyncedData()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "64M", 4096, 2);
        Qemu.Io(img, "write -P 0x61 0 2M");
        string mnt = t.Dir("mnt");
        byte[] data = ImageFile.Bytes(300_000, 3);
        long[] offsets = [12345, 5L << 20, 40_000_001];
        using (var m = Mounted.Start(mnt, [img], ["--flush-interval", "0"]))
        {
            using (var fs = new FileStream(m.File(), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1))
            {
                foreach (long off in offsets)
                {
                    fs.Position = off;
                    fs.Write(data);
                }

                fs.Flush(true);
                // Allocating writes after the fsync keep need-check set (nothing syncs them).
                fs.Position = 50L << 20;
                fs.Write(data);

                Assert.Equal(0, LibC.Kill(m.Pid, SIGKILL));
                m.WaitForDaemonExit(TimeSpan.FromSeconds(10));
            }

            m.Forget();
            // auto_unmount: the mount goes away by itself.
            Wait.Until(() => !Mounts.IsMounted(mnt), TimeSpan.FromSeconds(10), "the killed daemon's mount to vanish");
        }

        RunResult before = Qemu.Check(img);
        Assert.True(ImageFile.NeedCheck(img) || before.ExitCode == 0, $"need-check clear but the image is inconsistent: {before}");
        Assert.True(ImageFile.NeedCheck(img), "allocating writes were acknowledged without need-check set on disk");

        // A read-only mount must not repair (nothing is written on a read-only open).
        string crashed = ImageFile.Hash(img);
        using (var m = Mounted.Start(mnt, [img], ["-o", "ro"]))
        {
            Assert.True(ImageFile.ReadRange(m.File(), 0, 4096).All(b => b == 0x61));
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Assert.Equal(crashed, ImageFile.Hash(img));
        Assert.True(ImageFile.NeedCheck(img));

        using (var m = Mounted.Start(mnt, img))
        {
            Assert.Contains("need-check", m.MountResult.Stderr);
            Assert.Contains(img, m.MountResult.Stderr);
            foreach (long off in offsets)
            {
                Assert.True(data.AsSpan().SequenceEqual(ImageFile.ReadRange(m.File(), off, data.Length)), $"fsync'ed data at {off} lost");
            }

            Assert.Equal(0x61, ImageFile.ReadRange(m.File(), 1 << 20, 1)[0]);
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Assert.False(ImageFile.NeedCheck(img));
        RunResult after = Qemu.Check(img);
        Assert.True(after.ExitCode == 0, after.ToString());
    }

    [Fact]
    public void UnmountAfterStaleMountReportsIt()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        string mnt = t.Dir("mnt");
        using var m = Mounted.Start(mnt, t["a.qed"]);
        // Stop the daemon (it cannot serve nor die) so its mount stays: unmount must still clean up.
        Assert.Equal(0, LibC.Kill(m.Pid, SIGKILL));
        m.WaitForDaemonExit(TimeSpan.FromSeconds(10));
        Wait.Until(() => !Mounts.IsMounted(mnt), TimeSpan.FromSeconds(10), "auto_unmount");
        RunResult r = Env.Qf("unmount", mnt);
        Assert.NotEqual(0, r.ExitCode); // not a mount any more
        m.Forget();
    }

    [Theory]
    [InlineData("fusermount")]
    [InlineData("sigterm")]
    [InlineData("sigint")]
    public void OtherWaysOfUnmountingLeaveACleanImage(string how)
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "64M");
        string mnt = t.Dir("mnt");
        byte[] data = ImageFile.Bytes(200_000, 4);
        using (var m = Mounted.Start(mnt, [img], ["--flush-interval", "0"]))
        {
            using (var fs = new FileStream(m.File(), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1))
            {
                fs.Position = 777_777;
                fs.Write(data); // not fsync'ed: the clean close must make it durable
            }

            Assert.True(ImageFile.NeedCheck(img), "need-check should be set while allocations are unsynced");
            switch (how)
            {
                case "fusermount":
                    Run.Exec("fusermount3", "-u", mnt).Ok();
                    break;
                case "sigterm":
                    Assert.Equal(0, LibC.Kill(m.Pid, SIGTERM));
                    break;
                default:
                    Assert.Equal(0, LibC.Kill(m.Pid, 2));
                    break;
            }

            m.WaitForDaemonExit(TimeSpan.FromSeconds(30));
            m.Forget();
            Assert.False(Mounts.IsMounted(mnt));
            Assert.False(File.Exists(Mounts.PidFile(mnt)), "pid file left behind");
        }

        Assert.False(ImageFile.NeedCheck(img), "need-check left set");
        RunResult check = Qemu.Check(img);
        Assert.True(check.ExitCode == 0, check.ToString());
        Qemu.ToRaw(img, t["out.raw"]);
        Assert.True(data.AsSpan().SequenceEqual(ImageFile.ReadRange(t["out.raw"], 777_777, data.Length)));
    }

    [Fact]
    public void UnmountWhileBusyFailsAndKeepsTheMount()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        using var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]);
        using (var fs = new FileStream(m.File(), FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            RunResult busy = Env.Qf("unmount", m.MountPoint);
            Assert.NotEqual(0, busy.ExitCode);
            Assert.Single(Text.Lines(busy.Stderr));
            Assert.True(Mounts.IsQedfuseMount(m.MountPoint));
            Assert.True(Mounts.IsAlive(m.Pid));
            fs.ReadByte();
        }

        Assert.Equal(0, m.Unmount().ExitCode);
        Assert.False(Mounts.IsAlive(m.Pid));
        Assert.False(ImageFile.NeedCheck(t["a.qed"]));
    }

    [Fact]
    public void ForegroundMountEndsCleanlyOnSigterm()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "64M");
        string mnt = t.Dir("mnt");
        var psi = new System.Diagnostics.ProcessStartInfo(Env.Qedfuse) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "mount", "-f", "--flush-interval", "0", img, mnt })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = new System.Text.StringBuilder();
        p.ErrorDataReceived += (_, e) => { lock (err) { err.AppendLine(e.Data); } };
        p.OutputDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        string Stderr() { lock (err) { return err.ToString(); } }
        try
        {
            Wait.Until(() => Mounts.IsQedfuseMount(mnt) || p.HasExited, TimeSpan.FromSeconds(30), "the foreground mount");
            Assert.False(p.HasExited, $"foreground mount exited: {Stderr()}");
            byte[] data = ImageFile.Bytes(100_000, 8);
            using (var fs = new FileStream(Path.Combine(mnt, "a.raw"), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1))
            {
                fs.Position = 123_456;
                fs.Write(data);
            }

            Assert.Equal(0, LibC.Kill(p.Id, SIGTERM));
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(30)), "foreground daemon did not exit on SIGTERM");
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {Stderr()}");
            Assert.False(Mounts.IsMounted(mnt));
            Assert.False(ImageFile.NeedCheck(img));
            Assert.Equal(0, Qemu.Check(img).ExitCode);
            Qemu.ToRaw(img, t["out.raw"]);
            Assert.True(data.AsSpan().SequenceEqual(ImageFile.ReadRange(t["out.raw"], 123_456, data.Length)));
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
}
