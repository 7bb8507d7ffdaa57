using System.Text.Json;
using System.Text.RegularExpressions;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>
/// -o partitions (issue 13 item 7): tables written by sfdisk, whose own reading of them
/// (sfdisk --json) is the oracle for numbers and byte ranges; content is checked against the
/// whole-disk file and, after unmounting, against qemu-img's reading of the image.
/// </summary>
public sealed class PartitionTests
{
    private const string MbrWithLogicals = "label: dos\n,8M,L\n,8M,L\n,,E\n,10M,L\n,,L\n";

    /// <summary>sfdisk's reading of the table: partition number to (offset, length) in bytes, extended containers left out.</summary>
    private static Dictionary<int, (long Offset, long Length)> Oracle(string disk)
    {
        JsonElement table = JsonDocument.Parse(Run.Exec("sfdisk", "--json", disk).Ok().Stdout).RootElement.GetProperty("partitiontable");
        bool dos = table.GetProperty("label").GetString() == "dos";
        var result = new Dictionary<int, (long, long)>();
        foreach (JsonElement p in table.GetProperty("partitions").EnumerateArray())
        {
            string type = p.GetProperty("type").GetString()!;
            if (dos && type is "5" or "f" or "85")
            {
                continue;
            }

            int number = int.Parse(Regex.Match(p.GetProperty("node").GetString()!, "([0-9]+)$").Value);
            result[number] = (p.GetProperty("start").GetInt64() * 512, p.GetProperty("size").GetInt64() * 512);
        }

        return result;
    }

    /// <summary>Writes at offset 0 without truncating (a disk cannot change size).</summary>
    private static void WriteAt(string file, byte[] data)
    {
        using var h = File.OpenHandle(file, FileMode.Open, FileAccess.Write);
        RandomAccess.Write(h, data, 0);
    }

    private static void Sfdisk(string disk, string script) => Run.Exec("sfdisk", ["-q", "--no-reread", "--no-tell-kernel", disk], TimeSpan.FromSeconds(60), script).Ok();

    /// <summary>The partition files in the mount: number to size.</summary>
    private static Dictionary<int, long> Listed(string mountPoint, string name) =>
        Directory.GetFiles(mountPoint)
            .Select(f => Regex.Match(Path.GetFileName(f), $"^{name}-p([0-9]+)\\.raw$"))
            .Where(m => m.Success)
            .ToDictionary(m => int.Parse(m.Groups[1].Value), m => new FileInfo(Path.Combine(mountPoint, m.Value)).Length);

    private static void AssertListingMatches(string mountPoint, string name, Dictionary<int, (long Offset, long Length)> oracle)
    {
        Wait.Until(() => Listed(mountPoint, name).OrderBy(kv => kv.Key).SequenceEqual(oracle.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Key, kv.Value.Length))),
            TimeSpan.FromSeconds(10), $"partition files {string.Join(",", oracle.Select(kv => $"p{kv.Key}={kv.Value.Length}"))}, listed: {string.Join(",", Listed(mountPoint, name).Select(kv => $"p{kv.Key}={kv.Value}"))}");
    }

    [Fact]
    public void Mbr_primary_and_logical_partitions_are_windows_numbered_as_linux_does()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["disk.qed"], "64M");
        var data = new Dictionary<int, byte[]>();
        var beyond = new Dictionary<int, byte[]>(); // the sector after each partition, before any write
        Dictionary<int, (long Offset, long Length)> oracle;
        using (Mounted m = Mounted.Start(t.Dir("mnt"), [t["disk.qed"]], ["-o", "partitions"]))
        {
            Assert.Empty(Listed(m.MountPoint, "disk"));
            Sfdisk(m.File(), MbrWithLogicals);
            oracle = Oracle(m.File());
            Assert.Equal([1, 2, 5, 6], oracle.Keys.Order());
            AssertListingMatches(m.MountPoint, "disk", oracle);
            foreach ((int n, (long offset, long length)) in oracle.Where(p => p.Value.Offset + p.Value.Length < 64 << 20))
            {
                beyond[n] = ImageFile.ReadRange(m.File(), offset + length, 512);
            }

            foreach ((int n, (long offset, long length)) in oracle)
            {
                string part = Path.Combine(m.MountPoint, $"disk-p{n}.raw");
                data[n] = ImageFile.Bytes(128 << 10, n);
                int fd = LibC.OpenOrThrow(part, LibC.O_RDWR);
                try
                {
                    Assert.Equal(64 << 10, LibC.PWriteErr(fd, data[n].AsSpan(0, 64 << 10), 0));
                    // A write across the end stops at it; one at the end finds no space.
                    Assert.Equal(64 << 10, LibC.PWriteErr(fd, data[n].AsSpan(64 << 10), length - (64 << 10)));
                    Assert.Equal(4096, LibC.PWriteErr(fd, new byte[8192], length - 4096));
                    Assert.Equal(-LibC.ENOSPC, LibC.PWriteErr(fd, new byte[512], length));
                }
                finally
                {
                    LibC.Close(fd);
                }

                // The whole-disk file shows the same bytes at the oracle's range.
                Assert.Equal(data[n][..(64 << 10)], ImageFile.ReadRange(m.File(), offset, 64 << 10));
                Assert.Equal(data[n].AsSpan(64 << 10, 60 << 10).ToArray(), ImageFile.ReadRange(m.File(), offset + length - (64 << 10), 60 << 10));
                Assert.Equal(new byte[4096], ImageFile.ReadRange(m.File(), offset + length - 4096, 4096));
            }

            Assert.Equal(0, m.Unmount().ExitCode);
        }

        // QEMU's reading of the image agrees, and nothing spilled past a partition's end.
        Assert.Equal(0, Qemu.Check(t["disk.qed"]).ExitCode);
        Qemu.ToRaw(t["disk.qed"], t["disk.img"]);
        Assert.Equal(oracle, Oracle(t["disk.img"]));
        foreach ((int n, (long offset, long length)) in oracle)
        {
            Assert.Equal(data[n][..(64 << 10)], ImageFile.ReadRange(t["disk.img"], offset, 64 << 10));
            Assert.Equal(new byte[4096], ImageFile.ReadRange(t["disk.img"], offset + length - 4096, 4096));
            if (beyond.TryGetValue(n, out byte[]? next) && !oracle.Values.Any(o => o.Offset == offset + length))
            {
                Assert.Equal(next, ImageFile.ReadRange(t["disk.img"], offset + length, 512));
            }
        }
    }

    [Fact]
    public void Gpt_partitions_and_a_table_rewritten_while_mounted()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["disk.qed"], "64M");
        using Mounted m = Mounted.Start(t.Dir("mnt"), [t["disk.qed"]], ["-o", "partitions"]);
        Sfdisk(m.File(), "label: gpt\n,4M\n,12M\n,,\n");
        Dictionary<int, (long Offset, long Length)> first = Oracle(m.File());
        Assert.Equal([1, 2, 3], first.Keys.Order());
        AssertListingMatches(m.MountPoint, "disk", first);
        byte[] pattern = ImageFile.Bytes(1 << 20, 42);
        WriteAt(Path.Combine(m.MountPoint, "disk-p3.raw"), pattern);
        Assert.Equal(pattern, ImageFile.ReadRange(m.File(), first[3].Offset, pattern.Length));

        // Rewritten through the whole-disk file: the next listing and lookup show the new table.
        Sfdisk(m.File(), "label: gpt\n,20M\n,8M\n");
        Dictionary<int, (long Offset, long Length)> second = Oracle(m.File());
        Assert.Equal([1, 2], second.Keys.Order());
        AssertListingMatches(m.MountPoint, "disk", second);
        Wait.Until(() => !File.Exists(Path.Combine(m.MountPoint, "disk-p3.raw")), TimeSpan.FromSeconds(10), "disk-p3.raw to go");
        Assert.Equal(ImageFile.ReadRange(m.File(), second[2].Offset, 4096), ImageFile.ReadRange(Path.Combine(m.MountPoint, "disk-p2.raw"), 0, 4096));
        Assert.Equal(0, m.Unmount().ExitCode);
    }

    [Fact]
    public void Ext4_in_a_partition_file_passes_fsck_and_loop_mounts()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["disk.qed"], "64M");
        string loopMnt = t.Dir("ext4");
        Dictionary<int, (long Offset, long Length)> oracle;
        using (Mounted m = Mounted.Start(t.Dir("mnt"), [t["disk.qed"]], ["-o", "partitions"]))
        {
            Sfdisk(m.File(), MbrWithLogicals);
            oracle = Oracle(m.File());
            AssertListingMatches(m.MountPoint, "disk", oracle);
            string p5 = Path.Combine(m.MountPoint, "disk-p5.raw");
            Run.Exec("mkfs.ext4", "-q", "-F", p5).Ok();
            Run.Exec("mount", "-o", "loop", p5, loopMnt).Ok();
            try
            {
                File.WriteAllBytes(Path.Combine(loopMnt, "file"), ImageFile.Bytes(1 << 20, 5));
            }
            finally
            {
                Run.Exec("umount", loopMnt).Ok();
            }

            RunResult fsck = Run.Exec("fsck.ext4", "-fn", p5);
            Assert.True(fsck.ExitCode == 0, $"{fsck}");
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        // The same file system, cut out of QEMU's reading of the image at sfdisk's range.
        Qemu.ToRaw(t["disk.qed"], t["disk.img"]);
        (long offset, long length) = oracle[5];
        Run.Exec("dd", $"if={t["disk.img"]}", $"of={t["p5.img"]}", "bs=512", $"skip={offset / 512}", $"count={length / 512}", "status=none").Ok();
        Assert.Equal(0, Run.Exec("fsck.ext4", "-fn", t["p5.img"]).ExitCode);
        Run.Exec("debugfs", "-R", $"dump /file {t["file.out"]}", t["p5.img"]).Ok();
        Assert.Equal(ImageFile.Bytes(1 << 20, 5), File.ReadAllBytes(t["file.out"]));
    }

    [Fact]
    public void Format_raw_serves_a_raw_file_and_its_partitions()
    {
        using var t = new TempDir();
        string disk = t["disk.img"];
        File.WriteAllBytes(disk, new byte[32 << 20]);
        Sfdisk(disk, "label: dos\n,8M,L\n,,L\n");
        Dictionary<int, (long Offset, long Length)> oracle = Oracle(disk);
        string mnt = t.Dir("mnt");

        RunResult refused = Mounted.TryMount(mnt, [disk], ["-o", "partitions"]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("-o format=raw", Assert.Single(Text.Lines(refused.Stderr)));

        using Mounted m = Mounted.Start(mnt, [disk], ["-o", "format=raw,partitions"]);
        AssertListingMatches(mnt, "disk", oracle);
        byte[] pattern = ImageFile.Bytes(4096, 9);
        WriteAt(Path.Combine(mnt, "disk-p2.raw"), pattern);
        Assert.Equal(0, m.Unmount().ExitCode);
        Assert.Equal(pattern, ImageFile.ReadRange(disk, oracle[2].Offset, 4096));
    }

    [Fact]
    public void Empty_primary_slots_keep_the_numbers_of_the_others()
    {
        using var t = new TempDir();
        string disk = t["disk.img"];
        File.WriteAllBytes(disk, new byte[16 << 20]);
        Sfdisk(disk, "label: dos\ndisk.img2 : start=2048, size=4096, type=83\ndisk.img4 : start=8192, size=4096, type=83\n");
        Dictionary<int, (long Offset, long Length)> oracle = Oracle(disk);
        Assert.Equal([2, 4], oracle.Keys.Order());
        using Mounted m = Mounted.Start(t.Dir("mnt"), [disk], ["-o", "format=raw,partitions"]);
        AssertListingMatches(m.MountPoint, "disk", oracle);
        Assert.Equal(0, m.Unmount().ExitCode);
    }

    [Fact]
    public void Partition_files_of_a_read_only_mount_are_read_only()
    {
        using var t = new TempDir();
        string disk = t["disk.img"];
        File.WriteAllBytes(disk, new byte[16 << 20]);
        Sfdisk(disk, "label: gpt\n,,\n");
        using Mounted m = Mounted.Start(t.Dir("mnt"), [disk], ["-o", "ro,format=raw,partitions"]);
        string p1 = Path.Combine(m.MountPoint, "disk-p1.raw");
        Assert.True(File.Exists(p1));
        Assert.Equal(-LibC.EROFS, LibC.Open(p1, LibC.O_RDWR) is var fd && fd < 0 ? -LibC.Errno : fd);
        Assert.Equal(0, m.Unmount().ExitCode);
    }
}
