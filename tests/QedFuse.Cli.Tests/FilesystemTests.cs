using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>ext4 on a loop device on the mounted raw file.</summary>
public sealed class FilesystemTests
{
    private static void MakeTree(string root, int seed)
    {
        var rnd = new Random(seed);
        for (int d = 0; d < 6; d++)
        {
            string dir = Path.Combine(root, $"dir{d}", $"sub{d % 3}");
            Directory.CreateDirectory(dir);
            for (int f = 0; f < 12; f++)
            {
                int len = rnd.Next(4) == 0 ? rnd.Next(100_000, 400_000) : rnd.Next(0, 20_000);
                File.WriteAllBytes(Path.Combine(dir, $"f{f}.bin"), ImageFile.Bytes(len, rnd.Next()));
            }
        }

        File.WriteAllText(Path.Combine(root, "top.txt"), "hello\n");
    }

    private static void Umount(string dir)
    {
        if (Mounts.IsMounted(dir))
        {
            RunResult r = Run.Exec("umount", dir);
            if (r.ExitCode != 0)
            {
                Run.Exec("umount", "-l", dir);
            }
        }
    }

    private static void DetachLoops(string file)
    {
        foreach (string line in Text.Lines(Run.Exec("losetup", "-j", file).Stdout))
        {
            Run.Exec("losetup", "-d", line.Split(':')[0]);
        }
    }

    [Fact]
    public void Ext4OnTheMountedFile()
    {
        using var t = new TempDir();
        string img = t["disk.qed"];
        Qemu.CreateQed(img, "128M");
        string tree = t.Dir("tree"), ext = t.Dir("ext");
        MakeTree(tree, 42);
        using var m = Mounted.Start(t.Dir("mnt"), img);
        string raw = m.File();
        try
        {
            Run.Exec("mkfs.ext4", "-q", "-F", raw).Ok();
            Run.Exec("mount", "-o", "loop", raw, ext).Ok();
            Run.Exec("cp", "-a", tree + "/.", ext).Ok();
            Run.Exec("umount", ext).Ok();
            Wait.Until(() => Run.Exec("losetup", "-j", raw).Stdout.Length == 0, TimeSpan.FromSeconds(10), "the loop device to detach");

            RunResult fsck = Run.Exec("e2fsck", "-fn", raw);
            Assert.True(fsck.ExitCode == 0, fsck.ToString());

            Run.Exec("mount", "-o", "loop,ro", raw, ext).Ok();
            Run.Exec("diff", "-r", "-x", "lost+found", tree, ext).Ok();
            Run.Exec("umount", ext).Ok();
        }
        finally
        {
            Umount(ext);
            DetachLoops(raw);
        }

        Assert.Equal(0, m.Unmount().ExitCode);
        Assert.False(ImageFile.NeedCheck(img));
        RunResult check = Qemu.Check(img);
        Assert.True(check.ExitCode == 0, check.ToString());
        // qemu's view of the image holds the same file system.
        Qemu.ToRaw(img, t["out.raw"]);
        RunResult fsck2 = Run.Exec("e2fsck", "-fn", t["out.raw"]);
        Assert.True(fsck2.ExitCode == 0, fsck2.ToString());
    }

    /// <summary>DOS partition table: 30 MiB at 1 MiB, then the rest of 64 MiB; type 0x83.</summary>
    private static readonly byte[] Mbr = BuildMbr();

    private static byte[] BuildMbr()
    {
        byte[] b = new byte[66];
        void Entry(int i, uint start, uint sectors)
        {
            int o = i * 16;
            b[o + 4] = 0x83;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o + 8), start);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o + 12), sectors);
        }

        Entry(0, 2048, 61440);
        Entry(1, 63488, 131072 - 63488);
        b[64] = 0x55;
        b[65] = 0xAA;
        return b;
    }

    [Fact]
    public void PartitionTableAndPartitionLoopDevice()
    {
        using var t = new TempDir();
        string img = t["disk.qed"];
        Qemu.CreateQed(img, "64M", 4096, 2);
        using var m = Mounted.Start(t.Dir("mnt"), img);
        string raw = m.File();
        string? loop = null;
        try
        {
            using (var fs = new FileStream(raw, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1))
            {
                fs.Position = 446;
                fs.Write(Mbr);
                fs.Flush(true);
            }

            // Partition 2 as its own loop device (losetup -P needs udev/partscan, absent in containers).
            string table = Run.Exec("partx", "-g", "-o", "NR,START,SECTORS", raw).Ok().Stdout;
            Assert.Equal(["1 2048 61440", "2 63488 67584"], Text.Lines(table).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))));
            loop = Run.Exec("losetup", "-f", "--show", "-o", (63488L * 512).ToString(), "--sizelimit", (67584L * 512).ToString(), raw).Ok().Stdout.Trim();
            string p2 = loop;
            Run.Exec("mkfs.ext4", "-q", p2).Ok();
            RunResult fsck = Run.Exec("e2fsck", "-fn", p2);
            Assert.True(fsck.ExitCode == 0, fsck.ToString());
        }
        finally
        {
            if (loop is not null)
            {
                Run.Exec("losetup", "-d", loop);
            }

            DetachLoops(raw);
        }

        Assert.Equal(0, m.Unmount().ExitCode);
        Qemu.ToRaw(img, t["out.raw"]);
        string parts = Run.Exec("partx", "-g", "-o", "NR,START,SECTORS", t["out.raw"]).Ok().Stdout;
        Assert.Equal(["1 2048 61440", "2 63488 67584"], Text.Lines(parts).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))));
        Assert.Contains("ext4", Run.Exec("blkid", "-p", "-O", (63488L * 512).ToString(), t["out.raw"]).Stdout);
        Assert.Equal(0, Qemu.Check(img).ExitCode);
    }
}
