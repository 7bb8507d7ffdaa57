using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

public sealed class ReadOnlyTests
{
    [Fact]
    public void WritesFailAndImageIsUntouched()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        Qemu.Io(t["a.qed"], "write -P 0x42 0 1M");
        string hash = ImageFile.Hash(t["a.qed"]);
        using (var m = Mounted.Start(t.Dir("mnt"), [t["a.qed"]], ["-o", "ro"]))
        {
            var mode = File.GetUnixFileMode(m.File());
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, mode);
            Assert.Contains("ro", Run.Exec("findmnt", "-n", "-o", "OPTIONS", m.MountPoint).Ok().Stdout.Split(','));

            // Even root (which ignores mode bits) cannot write.
            int fd = LibC.Open(m.File(), LibC.O_RDWR);
            int err = LibC.Errno;
            if (fd >= 0)
            {
                LibC.Close(fd);
            }

            Assert.True(fd < 0 && err is LibC.EROFS or LibC.EACCES, $"open O_RDWR: fd {fd} errno {err}");
            Assert.ThrowsAny<Exception>(() => File.OpenHandle(m.File(), FileMode.Open, FileAccess.Write).Dispose());
            RunResult dd = Run.Exec("dd", "if=/dev/zero", $"of={m.File()}", "bs=4k", "count=1", "conv=notrunc", "status=none");
            Assert.NotEqual(0, dd.ExitCode);
            Assert.NotEqual(0, Run.Exec("fallocate", "-p", "-o", "0", "-l", "4096", m.File()).ExitCode);
            Assert.NotEqual(0, Run.Exec("truncate", "-s", "1M", m.File()).ExitCode);
            Assert.NotEqual(0, Run.Exec("touch", Path.Combine(m.MountPoint, "new")).ExitCode);

            // Reading still works, and sees the data.
            Assert.Equal(0x42, ImageFile.ReadRange(m.File(), 12345, 1)[0]);
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        Assert.Equal(hash, ImageFile.Hash(t["a.qed"]));
    }

    [Fact]
    public void TwoReadOnlyMountsOfOneImageCoexist()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        string hash = ImageFile.Hash(t["a.qed"]);
        using (var m1 = Mounted.Start(t.Dir("m1"), [t["a.qed"]], ["-o", "ro"]))
        using (var m2 = Mounted.Start(t.Dir("m2"), [t["a.qed"]], ["-o", "ro"]))
        {
            Assert.Equal(new FileInfo(m1.File()).Length, new FileInfo(m2.File()).Length);
            // ...but no writer while they are there.
            RunResult rw = Mounted.TryMount(t.Dir("m3"), [t["a.qed"]], []);
            Assert.NotEqual(0, rw.ExitCode);
            Assert.False(Mounts.IsMounted(t["m3"]));
        }

        Assert.Equal(hash, ImageFile.Hash(t["a.qed"]));
    }
}
