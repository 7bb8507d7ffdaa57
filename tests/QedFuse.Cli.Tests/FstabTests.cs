using QedFuse.Cli.Tests.Infra;
using static QedFuse.Cli.Tests.Infra.PrivateNamespace;

namespace QedFuse.Cli.Tests;

/// <summary>
/// /etc/fstab, mount -t fuse.qedfuse and env -i: mount(8) runs its helpers with an empty
/// environment, so nothing may depend on PATH. The fstab is the test's own (mount -T FILE), and
/// the helper is put in /sbin through an overlay in a private mount namespace: the machine's
/// /etc/fstab and /sbin are never touched.
/// </summary>
public sealed class FstabTests
{
    /// <summary>The fstab options the README shows, plus options mount(8) and systemd keep for themselves.</summary>
    public const string ReadmeOptions = "ro,allow_other,nofail,x-systemd.automount";

    [Fact]
    public void FstabEntriesMountWithMountDirAndUnmountWithUmount()
    {
        using var t = new TempDir();
        string ro = t["ro.qed"], rw = t["rw.qed"];
        Qemu.CreateQed(ro, "64M");
        Qemu.Io(ro, "write -P 0x5a 1M 256k");
        Qemu.CreateQed(rw, "64M");
        string roHash = ImageFile.Hash(ro);
        Qemu.ToRaw(ro, t["ro.raw"]);
        string mntRo = t.Dir("mnt ro"), mntRw = t.Dir("mnt-rw"), mntT = t.Dir("mnt-t");
        string fstab = t["fstab"];
        File.WriteAllText(fstab,
            "# the test's own fstab (mount -T)\n"
            + $"{ro} {mntRo.Replace(" ", "\\040")} qedfuse {ReadmeOptions} 0 0\n"
            + $"{rw} {mntRw} fuse.qedfuse rw,noauto,_netdev,x-systemd.device-timeout=10s,log_file={t["rw.log"]} 0 0\n");
        WriteHelperOverlay(t);

        string script = $$"""
            up={{Q(t["sbin-upper"])}}; work={{Q(t["sbin-work"])}}
            ro={{Q(mntRo)}}; rw={{Q(mntRw)}}; mt={{Q(mntT)}}
            cleanup() { for m in "$ro" "$rw" "$mt"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done; }
            trap cleanup EXIT
            mount -t overlay overlay -o lowerdir=/usr/sbin,upperdir="$up",workdir="$work" /usr/sbin
            # mount(8) with an empty environment, as at boot; 'mount -a' skips the noauto entry.
            env -i /usr/bin/mount -a -T {{Q(fstab)}}
            echo "RO-PID $(cat {{Q(Mounts.PidFile(mntRo))}})"
            echo "RO-MOUNTINFO $(grep -F " $(echo "$ro" | sed 's/ /\\040/g') " /proc/self/mountinfo)"
            echo "RO-HASH $(sha256sum < "$ro/ro.raw" | cut -d' ' -f1)"
            if echo x | dd of="$ro/ro.raw" conv=notrunc status=none 2>/tmp/err.$$; then echo RO-WRITABLE; else echo "RO-WRITE-ERR $(cat /tmp/err.$$)"; fi
            rm -f /tmp/err.$$
            grep -qF " $rw " /proc/self/mountinfo && echo RW-MOUNTED-BY-A || true
            env -i /usr/bin/mount -T {{Q(fstab)}} "$rw"
            echo "RW-PID $(cat {{Q(Mounts.PidFile(mntRw))}})"
            echo "RW-MOUNTINFO $(grep -F " $rw " /proc/self/mountinfo)"
            head -c 131072 /dev/zero | tr '\0' '\141' | dd of="$rw/rw.raw" bs=64k seek=32 conv=notrunc,fsync status=none
            # mount -t with the helper's other name, options after the directory
            env -i /usr/bin/mount -t fuse.qedfuse {{Q(ro)}} "$mt" -o ro,x-systemd.requires=foo.service
            echo "T-PID $(cat {{Q(Mounts.PidFile(mntT))}})"
            echo "T-MOUNTINFO $(grep -F " $mt " /proc/self/mountinfo)"
            env -i /usr/bin/umount "$ro"
            env -i /usr/bin/umount "$rw"
            env -i /usr/bin/umount "$mt"
            # (the namespace began as a copy of the machine's mounts: count only ours)
            grep -F {{Q(t.Path)}} /proc/self/mountinfo | grep -c 'fuse.qedfuse' | sed 's/^/LEFT /' || true
            """;
        RunResult r = Bash(script, TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 0, r.ToString());
        string[] lines = Text.Lines(r.Stdout);
        string Line(string key) => lines.FirstOrDefault(l => l.StartsWith(key + " ", StringComparison.Ordinal)) ?? throw new Xunit.Sdk.XunitException($"no {key} line: {r}");

        // The ro entry: read-only, allow_other, the image's bytes.
        string roInfo = Line("RO-MOUNTINFO");
        Assert.Contains(" - fuse.qedfuse ", roInfo);
        Assert.Matches(@" ro[, ]", roInfo.Split(" - ")[0]);
        Assert.Contains("allow_other", roInfo.Split(" - ")[1]);
        Assert.Equal(Line("RO-HASH")["RO-HASH ".Length..], FileSha256(t["ro.raw"]));
        Assert.Contains("Read-only file system", Line("RO-WRITE-ERR"));
        Assert.DoesNotContain("RW-MOUNTED-BY-A", r.Stdout);
        Assert.Contains(" - fuse.qedfuse ", Line("RW-MOUNTINFO"));
        Assert.Contains(" - fuse.qedfuse ", Line("T-MOUNTINFO"));
        Assert.Equal("LEFT 0", Line("LEFT"));
        Assert.Contains($"qedfuse  {ReadmeOptions}  0 0", File.ReadAllText(Repo.File("README.md"))); // the README shows this entry

        // umount ends in a clean close: the daemons finish by themselves; then ask QEMU.
        foreach (string key in new[] { "RO-PID", "RW-PID", "T-PID" })
        {
            int pid = int.Parse(Line(key)[(key.Length + 1)..]);
            Wait.Until(() => !Mounts.IsAlive(pid), TimeSpan.FromSeconds(60), $"daemon {pid} ({key}) to exit after umount");
        }

        Assert.Equal(roHash, ImageFile.Hash(ro));
        Assert.False(ImageFile.NeedCheck(rw));
        Assert.Equal(0, Qemu.Check(rw).ExitCode);
        Qemu.Io(rw, "read -P 0x61 2M 128k", "read -P 0 0 2M");
        string log = File.ReadAllText(t["rw.log"]);
        Assert.Contains($"mounted {rw} at {mntRw}", log);
        Assert.Contains($"unmounted {mntRw}", log);
    }

    [Fact]
    public void HelperIgnoresMountAndSystemdOptionsAndPassesTheRest()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "16M");
        string mnt = t.Dir("mnt");
        string helper = t["mount.qedfuse"];
        File.WriteAllText(helper, Repo.MountHelperText());
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            // As systemd or a hand-written unit may call it: every option mount(8) owns, in any form.
            RunResult ok = Run.Exec("env", ["-i", helper, img, mnt, "-s", "-n", "-o", "defaults,nofail,noatime,nodev,x-systemd.automount,X-mount.mkdir,comment=x", "-oro"], TimeSpan.FromSeconds(60));
            Assert.True(ok.ExitCode == 0, ok.ToString());
            Assert.True(Mounts.IsQedfuseMount(mnt));
            Assert.Equal(-LibC.EROFS, WriteOneByte(Path.Combine(mnt, "a.raw")));
            Assert.Equal(0, Run.Exec("env", ["-i", Env.Qedfuse, "unmount", mnt], TimeSpan.FromSeconds(90)).ExitCode);

            // An option qedfuse does not know reaches it, and it names it.
            RunResult bad = Run.Exec("env", ["-i", helper, img, mnt, "-o", "rw,nofail,bogus_opt"], TimeSpan.FromSeconds(60));
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("bogus_opt", bad.Stderr);
            Assert.False(Mounts.IsMounted(mnt));
        }
        finally
        {
            Mounts.ForceCleanup(mnt);
        }
    }

    [Fact]
    public void MountAndUnmountWorkWithAnEmptyEnvironment()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "64M");
        string mnt = t.Dir("mnt");
        byte[] data = ImageFile.Bytes(70_000, 21);
        try
        {
            RunResult m = Run.Exec("env", ["-i", Env.Qedfuse, "mount", img, mnt], TimeSpan.FromSeconds(60));
            Assert.True(m.ExitCode == 0, m.ToString());
            Assert.True(Mounts.IsQedfuseMount(mnt));
            int pid = Mounts.ReadPid(mnt) ?? throw new Xunit.Sdk.XunitException("no pid file");
            using (var fs = new FileStream(Path.Combine(mnt, "a.raw"), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1))
            {
                fs.Position = 5_000_000;
                fs.Write(data);
            }

            // The daemon left the caller's session (setsid(2), not a setsid program on PATH).
            Assert.Equal(pid, SessionId(pid));
            RunResult u = Run.Exec("env", ["-i", Env.Qedfuse, "unmount", mnt], TimeSpan.FromSeconds(90));
            Assert.True(u.ExitCode == 0, u.ToString());
            Assert.False(Mounts.IsAlive(pid));
        }
        finally
        {
            Mounts.ForceCleanup(mnt);
        }

        Assert.False(ImageFile.NeedCheck(img));
        Assert.Equal(0, Qemu.Check(img).ExitCode);
        Qemu.ToRaw(img, t["out.raw"]);
        Assert.True(data.AsSpan().SequenceEqual(ImageFile.ReadRange(t["out.raw"], 5_000_000, data.Length)));
    }

    /// <summary>/sbin/mount.qedfuse and mount.fuse.qedfuse in an overlay upper layer for /usr/sbin.</summary>
    internal static void WriteHelperOverlay(TempDir t)
    {
        string upper = t.Dir("sbin-upper");
        t.Dir("sbin-work");
        string helper = Path.Combine(upper, "mount.qedfuse");
        File.WriteAllText(helper, Repo.MountHelperText());
        File.SetUnixFileMode(helper, (UnixFileMode)0b111_101_101);
        File.CreateSymbolicLink(Path.Combine(upper, "mount.fuse.qedfuse"), "mount.qedfuse");
    }

    private static string FileSha256(string path) => ImageFile.Hash(path).ToLowerInvariant();

    private static long WriteOneByte(string path)
    {
        int fd = LibC.Open(path, LibC.O_RDWR);
        if (fd < 0)
        {
            return -LibC.Errno;
        }

        try
        {
            return LibC.PWriteErr(fd, [1], 0);
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    private static int SessionId(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[3]);
    }
}
