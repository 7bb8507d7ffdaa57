using QedFuse.Reliability.Tests.Support;

namespace QedFuse.Reliability.Tests.Mount;

/// <summary>
/// QEMU-compatible image locking against the real QEMU tools: qemu-img, qemu-io and
/// qemu-storage-daemon on one side, qedfuse mounts on the other.
/// </summary>
public sealed class LockingTests : IDisposable
{
    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(20);
    private readonly TempDir _dir = new("qedfuse-lock-");
    private readonly string _image;

    public LockingTests()
    {
        _image = _dir["disk.qed"];
        Proc.Ok("qemu-img", "create", "-q", "-f", "qed", _image, "64M");
        Proc.Ok("qemu-io", "-f", "qed", "-c", "write -P 0x5a 0 1M", _image);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Read_write_mount_locks_out_qemu_tools_but_not_shared_inspection()
    {
        using QedfuseMount m = QedfuseMount.Start(_image, _dir.NewDir("mnt"));

        ProcResult info = Proc.Run("qemu-img", "info", _image);
        Assert.True(info.ExitCode != 0 && info.Stderr.Contains("lock", StringComparison.OrdinalIgnoreCase), $"qemu-img info: {info}");

        ProcResult io = Proc.Run("qemu-io", "-c", "read 0 4k", _image);
        Assert.True(io.ExitCode != 0 && io.Stderr.Contains("lock", StringComparison.OrdinalIgnoreCase), $"qemu-io read: {io}");

        ProcResult shared = Proc.Run("qemu-img", "info", "-U", _image);
        Assert.True(shared.ExitCode == 0 && shared.Stdout.Contains("file format: qed"), $"qemu-img info -U: {shared}");

        // A second qedfuse mount of the same image is refused, read-write or read-only.
        AssertMountRefused(_dir.NewDir("mnt2"));
        AssertMountRefused(_dir.NewDir("mnt3"), "-o", "ro");

        Assert.Equal(0, m.Unmount().ExitCode);
        Proc.Ok("qemu-img", "info", _image); // the lock went with the mount
    }

    [Fact]
    public void Qemu_io_holding_the_image_for_writing_refuses_our_mounts_but_not_force_share()
    {
        using QemuHolder qemu = QemuHolder.Start("qemu-io", "-f", "qed", _image);
        Assert.True(Proc.WaitUntil(() => qemu.HasExited || QemuHolder.WriteLockHeld(_image), LockWait), "qemu-io never locked the image");
        Assert.False(qemu.HasExited, $"qemu-io exited: {qemu.Output}");

        AssertMountRefused(_dir.NewDir("rw"));
        AssertMountRefused(_dir.NewDir("ro"), "-o", "ro");

        // force_share: a read-only view while QEMU may write (stale data possible, as documented).
        using QedfuseMount shared = QedfuseMount.Start(_image, _dir.NewDir("shared"), "-o", "ro,force_share");
        byte[] head = ReadAt(shared.RawFile, 0, 4096);
        Assert.All(head, b => Assert.Equal(0x5a, b));
        Assert.Equal(0, shared.Unmount().ExitCode);
        Assert.False(qemu.HasExited, "qemu-io lost the image while we shared it");
    }

    [Fact]
    public void Qemu_storage_daemon_writer_refuses_our_mounts_while_force_share_mount_serves_reads()
    {
        string qsd = "/usr/bin/qemu-storage-daemon";
        Assert.True(File.Exists(qsd), "qemu-storage-daemon is missing: apt-get install qemu-system-common");
        string socket = _dir["nbd.sock"];
        using QemuHolder daemon = QemuHolder.Start(qsd,
            "--blockdev", $"driver=file,node-name=f,filename={_image}",
            "--blockdev", "driver=qed,node-name=q,file=f",
            "--nbd-server", $"addr.type=unix,addr.path={socket}",
            "--export", "type=nbd,id=e,node-name=q,name=q,writable=on");
        Assert.True(Proc.WaitUntil(() => daemon.HasExited || (File.Exists(socket) && QemuHolder.WriteLockHeld(_image)), LockWait),
            $"qemu-storage-daemon did not come up: {daemon.Output}");
        Assert.False(daemon.HasExited, $"qemu-storage-daemon exited: {daemon.Output}");

        string holder = $"in use by QEMU (pid {daemon.Pid}, qemu-storage-daemon)";
        AssertMountRefusedBy(_dir.NewDir("rw"), holder);
        AssertMountRefusedBy(_dir.NewDir("ro"), holder, "-o", "ro");

        using QedfuseMount shared = QedfuseMount.Start(_image, _dir.NewDir("shared"), "-o", "ro,force_share");
        // QEMU keeps writing through its export while we are mounted.
        Proc.Ok("qemu-io", "-f", "raw", "-c", "write -P 0x77 2M 64k", $"nbd+unix:///q?socket={socket}");
        Assert.All(ReadAt(shared.RawFile, 0, 4096), b => Assert.Equal(0x5a, b));
        Assert.Equal(0, shared.Unmount().ExitCode);
        daemon.Dispose();
        Assert.True(Proc.WaitUntil(() => !QemuHolder.WriteLockHeld(_image), LockWait));
        ProcResult read = Proc.Ok("qemu-io", "-f", "qed", "-c", "read -P 0x77 2M 64k", _image);
        Assert.DoesNotContain("fail", read.Stdout, StringComparison.OrdinalIgnoreCase);
        QemuCheck.AssertClean(_image);
    }

    [Fact]
    public void Read_only_mounts_coexist_with_each_other_and_with_qemu_readers_but_not_writers()
    {
        using QedfuseMount a = QedfuseMount.Start(_image, _dir.NewDir("a"), "-o", "ro");
        using QedfuseMount b = QedfuseMount.Start(_image, _dir.NewDir("b"), "-o", "ro");
        Assert.Equal(ReadAt(a.RawFile, 0, 65536), ReadAt(b.RawFile, 0, 65536));

        Proc.Ok("qemu-img", "info", _image);
        Proc.Ok("qemu-io", "-r", "-f", "qed", "-c", "read -P 0x5a 0 4k", _image);
        ProcResult writer = Proc.Run("qemu-io", "-f", "qed", "-c", "write 0 4k", _image);
        Assert.True(writer.ExitCode != 0 && writer.Stderr.Contains("lock", StringComparison.OrdinalIgnoreCase),
            $"a QEMU writer must be refused while read-only mounts are up: {writer}");
        AssertMountRefused(_dir.NewDir("rw"));

        Assert.Equal(0, a.Unmount().ExitCode);
        Assert.Equal(0, b.Unmount().ExitCode);
    }

    /// <summary>The mount fails with one line naming the image, and nothing is left mounted or running.</summary>
    private void AssertMountRefused(string dir, params string[] options) => AssertMountRefusedBy(dir, "in use", options);

    /// <summary>As above, the line naming the holder as <paramref name="holder"/> and offering the read-only way in.</summary>
    private void AssertMountRefusedBy(string dir, string holder, params string[] options)
    {
        ProcResult r = QedfuseMount.TryStart(_image, dir, out QedfuseMount? m, options);
        using (m)
        {
            Assert.True(r.ExitCode != 0, $"qedfuse mount {string.Join(' ', options)} should have been refused: {r}");
        }

        string[] lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got: {r.Stderr}");
        Assert.Contains(_image, lines[0]);
        Assert.Contains(holder, lines[0]);
        Assert.Contains("-o ro,force_share", lines[0]);
        Assert.False(Qedfuse.IsMounted(dir), $"{dir} left mounted");
        Assert.False(File.Exists(Qedfuse.PidFile(dir)), "a pid file was left behind");
    }

    private static byte[] ReadAt(string file, long offset, int length)
    {
        using var h = File.OpenHandle(file, FileMode.Open, FileAccess.Read);
        var buf = new byte[length];
        int n = RandomAccess.Read(h, buf, offset);
        Assert.Equal(length, n);
        return buf;
    }
}
