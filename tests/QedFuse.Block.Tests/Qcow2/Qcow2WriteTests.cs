using System.Buffers.Binary;

namespace QedFuse.Block.Tests.Qcow2;

/// <summary>
/// Writes through the engine into qcow2 images QEMU made (data, zero, compressed, snapshot-
/// shared clusters, over backing files), checked against a mirrored reference with qemu-img
/// compare and against qemu-img check (exit 0: no corruption, no leak after a clean close).
/// </summary>
public class Qcow2WriteTests
{
    private const long Size = 6L << 20;

    /// <summary>A mirror of the virtual disk: what every read must return.</summary>
    private sealed class Mirror(byte[] bytes)
    {
        public byte[] Bytes { get; } = bytes;

        public void Write(IBlockImage image, long offset, byte[] data)
        {
            image.Write(offset, data);
            data.CopyTo(Bytes, offset);
        }

        public void Zero(IBlockImage image, long offset, long length, bool unmap)
        {
            image.WriteZeroes(offset, length, unmap);
            Array.Clear(Bytes, (int)offset, (int)length);
        }
    }

    private static Mirror MirrorOf(string img, TempDir dir) =>
        new(File.ReadAllBytes(Qemu.ConvertToRaw(img, dir.Path, "qcow2")));

    private static void AssertImageEquals(string img, Mirror mirror, TempDir dir)
    {
        var (exit, report, raw) = Qemu.Check(img, "qcow2");
        Assert.True(exit == 0, "qemu-img check after a clean close: " + raw);
        string reference = dir.File($"mirror-{Guid.NewGuid():N}.raw");
        File.WriteAllBytes(reference, mirror.Bytes);
        Qemu.AssertSameAsRaw(img, reference, "qcow2");
        using IBlockImage image = Engine.OpenRo(img);
        Files.AssertBytesEqual(mirror.Bytes, Engine.ReadChunked(image, 0, mirror.Bytes.Length, 65537), 0, "engine read-back");
    }

    /// <summary>Random writes and zeroings, some unaligned, some across clusters and L2 tables.</summary>
    private static void RandomWork(IBlockImage image, Mirror mirror, int seed, int operations, int clusterSize)
    {
        var rng = new Random(seed);
        for (int k = 0; k < operations; k++)
        {
            int length = rng.Next(4) switch
            {
                0 => rng.Next(1, 700),
                1 => clusterSize,
                2 => rng.Next(1, 3 * clusterSize),
                _ => rng.Next(1, 200_000),
            };
            long offset = rng.Next(4) == 0
                ? (long)rng.Next((int)(Size / clusterSize)) * clusterSize
                : rng.NextInt64(Size - length);
            length = (int)Math.Min(length, Size - offset);
            if (rng.Next(6) == 0)
            {
                mirror.Zero(image, offset, length, unmap: rng.Next(2) == 0);
            }
            else
            {
                mirror.Write(image, offset, Engine.Pattern(length, seed * 1000 + k));
            }

            if (k % 17 == 0)
            {
                long at = rng.NextInt64(Size - 5000);
                byte[] got = new byte[5000];
                image.Read(at, got);
                Files.AssertBytesEqual(mirror.Bytes.AsSpan((int)at, 5000), got, at, $"read-back after operation {k}");
            }

            if (k % 50 == 49)
            {
                image.Flush();
            }
        }
    }

    [Theory]
    [InlineData("0.10", 65536, 16)]
    [InlineData("1.1", 512, 1)]
    [InlineData("1.1", 4096, 64)]
    [InlineData("1.1", 65536, 16)]
    [InlineData("1.1", 262144, 8)]
    public void RandomWritesIntoQemuWrittenImages(string compat, int c, int refcountBits)
    {
        using var dir = new TempDir();
        string img = dir.File("w.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", $"compat={compat},cluster_size={c},refcount_bits={refcountBits}", img, Size.ToString());
        Qemu.Io(img, "qcow2", $"write -P 0x11 0 {3 * c}", $"write -c -P 0x22 {4 * c} {c}", $"write -c -P 0x23 {5 * c} {c}",
            $"write -z {3 * c} {c}", $"write -P 0x33 {Size / 2} 300000");
        Mirror mirror = MirrorOf(img, dir);
        using (IBlockImage image = Engine.OpenRw(img))
        {
            RandomWork(image, mirror, c + refcountBits, c >= 1 << 20 ? 60 : 250, c);
        }

        AssertImageEquals(img, mirror, dir);
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void WritesOverASmallerBackingFile(string backingFormat)
    {
        using var dir = new TempDir();
        string backing = dir.File("base." + backingFormat);
        if (backingFormat == "raw")
        {
            File.WriteAllBytes(backing, Engine.Pattern((int)(Size / 2) + 1000, 5));
        }
        else
        {
            Qemu.Img("create", "-q", "-f", "qcow2", backing, (Size / 2).ToString());
            Qemu.Io(backing, "qcow2", "write -P 0x55 0 1M", "write -c -P 0x56 2M 64k");
        }

        string img = dir.File("top.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=16384", "-b", Path.GetFileName(backing), "-F", backingFormat, img, Size.ToString());
        Mirror mirror = MirrorOf(img, dir);
        using (IBlockImage image = Engine.OpenRw(img))
        {
            RandomWork(image, mirror, 77, 200, 16384);
        }

        AssertImageEquals(img, mirror, dir);
    }

    /// <summary>Writes to a qcow2 with internal snapshots copy the shared clusters: every snapshot reads the same before and after.</summary>
    [Fact]
    public void WritesKeepInternalSnapshotsIntact()
    {
        using var dir = new TempDir();
        string img = dir.File("s.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, Size.ToString());
        Qemu.Io(img, "qcow2", "write -P 1 0 1M", "write -c -P 2 1M 4096", "write -z 2M 64k");
        Qemu.Img("snapshot", "-c", "first", img);
        Qemu.Io(img, "qcow2", "write -P 3 512k 1M");
        Qemu.Img("snapshot", "-c", "second", img);
        string first = dir.File("first.raw"), second = dir.File("second.raw");
        Qemu.Img("convert", "-l", "snapshot.name=first", "-f", "qcow2", "-O", "raw", img, first);
        Qemu.Img("convert", "-l", "snapshot.name=second", "-f", "qcow2", "-O", "raw", img, second);
        Mirror mirror = MirrorOf(img, dir);
        using (IBlockImage image = Engine.OpenRw(img))
        {
            RandomWork(image, mirror, 9, 200, 4096);
            mirror.Zero(image, 0, 2 << 20, unmap: true);
        }

        AssertImageEquals(img, mirror, dir);
        foreach (var (name, reference) in new[] { ("first", first), ("second", second) })
        {
            string now = dir.File(name + ".after.raw");
            Qemu.Img("convert", "-l", $"snapshot.name={name}", "-f", "qcow2", "-O", "raw", img, now);
            Assert.True(File.ReadAllBytes(reference).AsSpan().SequenceEqual(File.ReadAllBytes(now)), $"snapshot {name} changed");
        }
    }

    /// <summary>Eight writers on interleaved 4 KiB blocks of the same 64 KiB clusters: one allocation per cluster, nothing lost.</summary>
    [Fact]
    public void ConcurrentWritersShareClustersWithoutLoss()
    {
        using var dir = new TempDir();
        string baseImg = dir.File("base.raw");
        File.WriteAllBytes(baseImg, Engine.Pattern((int)Size, 3));
        string img = dir.File("c.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", img, Size.ToString());
        Mirror mirror = MirrorOf(img, dir);
        using (IBlockImage image = Engine.OpenRw(img))
        {
            const int writers = 8;
            Parallel.For(0, writers, new ParallelOptions { MaxDegreeOfParallelism = writers }, w =>
            {
                for (long block = w; block < Size / 4096; block += writers * 3)
                {
                    byte[] data = Engine.Pattern(4096, (int)block);
                    image.Write(block * 4096, data);
                    lock (mirror)
                    {
                        data.CopyTo(mirror.Bytes, block * 4096);
                    }

                    if (block % 97 == 0)
                    {
                        image.Flush();
                    }
                }
            });
        }

        AssertImageEquals(img, mirror, dir);
    }

    /// <summary>Discarding and rewriting reuses freed clusters and trims the tail: the file stays near the live data.</summary>
    [Fact]
    public void DiscardRewriteCyclesDoNotGrowTheFile()
    {
        using var dir = new TempDir();
        string img = dir.File("d.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", img, "64M");
        const int live = 8 << 20;
        var mirror = new Mirror(new byte[64 << 20]);
        using (IBlockImage image = Engine.OpenRw(img))
        {
            for (int cycle = 0; cycle < 8; cycle++)
            {
                long at = (cycle % 4) * (long)live;
                mirror.Write(image, at, Engine.Pattern(live, cycle));
                image.Flush();
                mirror.Zero(image, at, live, unmap: true);
                image.Flush();
                mirror.Write(image, (at + live) % (64 << 20), Engine.Pattern(live / 2, cycle + 100));
                image.Flush();
                mirror.Zero(image, (at + live) % (64 << 20), live / 2, unmap: true);
            }

            mirror.Write(image, 0, Engine.Pattern(live, 999));
        }

        long size = new FileInfo(img).Length;
        Assert.True(size <= live + (2 << 20), $"file is {size} bytes for {live} bytes of live data");
        var mirrorFull = new Mirror(mirror.Bytes);
        AssertImageEquals(img, mirrorFull, dir);
    }

    /// <summary>An L2 entry that claims ("copied") the L1 table's cluster: the write is refused with EIO, the table survives, the corrupt bit is set.</summary>
    [Fact]
    public void WriteOntoMetadataIsRefusedAndMarksTheImageCorrupt()
    {
        using var dir = new TempDir();
        string img = dir.File("o.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", img, "8M");
        Qemu.Io(img, "qcow2", "write -P 1 0 64k");
        long l1 = (long)BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(img, 40, 8));
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(img, l1, 8)) & 0x00ff_ffff_ffff_fe00UL);
        byte[] entry = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(entry, (1UL << 63) | (ulong)l1);
        Files.WriteAt(img, l2, entry);
        byte[] l1Before = Files.ReadRange(img, l1, 65536);
        IBlockImage image = Engine.OpenRw(img);
        var e = Assert.ThrowsAny<IOException>(() => image.Write(100, new byte[10]));
        Assert.Equal(5, e.HResult);
        Assert.ThrowsAny<IOException>(() => image.Write(1 << 20, new byte[10])); // the image stays failed
        Assert.ThrowsAny<IOException>(() => image.Flush());
        Assert.ThrowsAny<IOException>(() => image.Dispose()); // and says so on close

        Assert.Equal(l1Before, Files.ReadRange(img, l1, 65536));
        Assert.NotEqual(0UL, BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(img, 72, 8)) & 2);
        var refused = Assert.ThrowsAny<BadImageException>(() => Engine.OpenRw(img).Dispose());
        Assert.Contains("corrupt", refused.Message);
    }
}
