using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>Mount points spelled the many ways users spell them.</summary>
public sealed class MountPointTests
{
    private static void MountAndUnmount(string img, string mountAs, string realDir, string unmountAs)
    {
        RunResult r = Run.Exec(Env.Qedfuse, ["mount", img, mountAs], TimeSpan.FromSeconds(60));
        try
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.True(Mounts.IsQedfuseMount(realDir), $"{realDir} not mounted: {r}");
            Assert.True(File.Exists(Path.Combine(realDir, "a.raw")));
            RunResult u = Run.Exec(Env.Qedfuse, ["unmount", unmountAs], TimeSpan.FromSeconds(90));
            Assert.True(u.ExitCode == 0, u.ToString());
            Assert.False(Mounts.IsMounted(realDir));
            Assert.False(ImageFile.NeedCheck(img));
        }
        finally
        {
            Mounts.ForceCleanup(realDir, Mounts.ReadPid(realDir) ?? Mounts.ReadPid(mountAs));
        }
    }

    [Fact]
    public void TrailingSlash()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        string mnt = t.Dir("mnt");
        MountAndUnmount(t["a.qed"], mnt + "/", mnt, mnt);
        MountAndUnmount(t["a.qed"], mnt, mnt, mnt + "/");
    }

    [Fact]
    public void ThroughASymlinkAndRelative()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        string mnt = t.Dir("real/mnt");
        File.CreateSymbolicLink(t["link"], t["real"]);
        MountAndUnmount(t["a.qed"], t["link"] + "/mnt", mnt, mnt);
        MountAndUnmount(t["a.qed"], mnt, mnt, t["link"] + "/mnt");
        // Relative paths and names with spaces.
        string spaced = t.Dir("with space");
        RunResult r = Run.Sh($"cd '{t.Path}' && '{Env.Qedfuse}' mount a.qed 'with space' && '{Env.Qedfuse}' unmount './with space/'");
        Mounts.ForceCleanup(spaced);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.False(ImageFile.NeedCheck(t["a.qed"]));
    }
}
