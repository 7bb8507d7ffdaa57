using System.IO.MemoryMappedFiles;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>Writes through the mount, verified after unmount by qemu-img.</summary>
public sealed class WriteTests
{
    private const long Size = 64L << 20;

    /// <summary>A qed image over a patterned raw backing file, and the raw reference of its contents.</summary>
    private static (string Image, string Backing, byte[] Reference) ImageWithBacking(TempDir t, int clusterSize = 65536, int tableSize = 4)
    {
        Run.Exec("truncate", "-s", "64M", t["base.raw"]).Ok();
        Qemu.IoFormat(t["base.raw"], "raw", "write -P 0x3c 0 20M", "write -P 0x4d 40M 24M");
        Qemu.CreateQed(t["top.qed"], "64M", clusterSize, tableSize, backing: "base.raw", backingFormat: "raw");
        Qemu.Io(t["top.qed"], "write -P 0x5e 1M 1M");
        Qemu.ToRaw(t["top.qed"], t["ref.raw"]);
        return (t["top.qed"], t["base.raw"], File.ReadAllBytes(t["ref.raw"]));
    }

    private static void AssertCleanAndEqual(string image, string backingHash, string backing, byte[] reference, string refPath)
    {
        File.WriteAllBytes(refPath, reference);
        Assert.False(ImageFile.NeedCheck(image), "need-check still set after a clean unmount");
        RunResult check = Qemu.Check(image);
        Assert.True(check.ExitCode == 0, $"qemu-img check: {check}");
        RunResult cmp = Qemu.ImgRaw("compare", "-f", "qed", "-F", "raw", image, refPath);
        Assert.True(cmp.ExitCode == 0, $"qemu-img compare: {cmp}");
        Assert.Equal(backingHash, ImageFile.Hash(backing));
    }

    [Theory]
    [InlineData(65536, 4)]
    [InlineData(4096, 2)]
    public void ConcurrentRandomWritesMatchReference(int clusterSize, int tableSize)
    {
        using var t = new TempDir();
        var (img, backing, reference) = ImageWithBacking(t, clusterSize, tableSize);
        string backingHash = ImageFile.Hash(backing);

        // Thread k owns the 3000-byte slots with slot % Threads == k: writes from different
        // threads meet in the same clusters (concurrent allocation) but never overlap.
        const int threads = 4, slot = 3000, writesPerThread = 150;
        long slots = Size / slot;
        using (var m = Mounted.Start(t.Dir("mnt"), [img], ["--flush-interval", "0.2"]))
        {
            var errors = new List<Exception>();
            var workers = Enumerable.Range(0, threads).Select(k => new Thread(() =>
            {
                try
                {
                    var rnd = new Random(100 + k);
                    bool writeThrough = k % 2 == 0;
                    using var fs = new FileStream(m.File(), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1,
                        writeThrough ? FileOptions.WriteThrough : FileOptions.None);
                    for (int i = 0; i < writesPerThread; i++)
                    {
                        // Mostly in the first 8 MiB (dense, shared clusters), some anywhere.
                        long range = i % 4 == 0 ? slots : (8L << 20) / slot;
                        long s = rnd.NextInt64(range / threads) * threads + k;
                        int start = rnd.Next(slot), len = rnd.Next(1, slot - start + 1);
                        long off = s * slot + start;
                        if (off + len > Size)
                        {
                            continue;
                        }

                        byte[] data = new byte[len];
                        rnd.NextBytes(data);
                        fs.Position = off;
                        fs.Write(data);
                        if (!writeThrough && i % 10 == 9)
                        {
                            fs.Flush(true);
                        }

                        lock (reference)
                        {
                            data.CopyTo(reference, off);
                        }
                    }

                    fs.Flush(true);
                }
                catch (Exception e)
                {
                    lock (errors)
                    {
                        errors.Add(e);
                    }
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => Assert.True(w.Join(TimeSpan.FromSeconds(120)), "writer thread hung"));
            Assert.Empty(errors);

            // Read back through the mount before unmounting.
            Assert.True(reference.AsSpan().SequenceEqual(File.ReadAllBytes(m.File())), "mount reads differ from what was written");
            RunResult u = m.Unmount();
            Assert.True(u.ExitCode == 0, u.ToString());
        }

        AssertCleanAndEqual(img, backingHash, backing, reference, t["expected.raw"]);
    }

    [Fact]
    public void SharedWritableMmap()
    {
        using var t = new TempDir();
        var (img, backing, reference) = ImageWithBacking(t);
        string backingHash = ImageFile.Hash(backing);
        using (var m = Mounted.Start(t.Dir("mnt"), img))
        {
            using (var mmf = MemoryMappedFile.CreateFromFile(m.File(), FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
            using (var view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite))
            {
                var rnd = new Random(5);
                foreach (long off in new long[] { 0, 4095, 1 << 20, (20L << 20) - 7, 33_333_333, Size - 100 })
                {
                    byte[] data = new byte[100];
                    rnd.NextBytes(data);
                    view.WriteArray(off, data, 0, data.Length);
                    data.CopyTo(reference, off);
                }

                view.Flush();
            }

            Assert.True(reference.AsSpan().SequenceEqual(File.ReadAllBytes(m.File())), "reads after mmap writes differ");
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        AssertCleanAndEqual(img, backingHash, backing, reference, t["expected.raw"]);
    }

    [Fact]
    public void ODirectWrites()
    {
        using var t = new TempDir();
        var (img, backing, reference) = ImageWithBacking(t);
        string backingHash = ImageFile.Hash(backing);
        File.WriteAllBytes(t["chunk"], ImageFile.Bytes(3 << 20, 9));
        using (var m = Mounted.Start(t.Dir("mnt"), img))
        {
            Run.Exec("dd", $"if={t["chunk"]}", $"of={m.File()}", "bs=64k", "seek=100", "oflag=direct", "conv=notrunc,fsync", "status=none").Ok();
            File.ReadAllBytes(t["chunk"]).CopyTo(reference, 100 * 65536);
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        AssertCleanAndEqual(img, backingHash, backing, reference, t["expected.raw"]);
    }
}
