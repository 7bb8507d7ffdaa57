using System.Buffers.Binary;

namespace QedFuse.Block.Tests.Qcow2;

/// <summary>
/// A qcow2 image with one header field (or extension) made hostile is refused with one line
/// naming the file and the problem, and the file is not changed. A read-write open of a good
/// qcow2 image is refused the same way while the driver is read-only.
/// </summary>
public class Qcow2HostileHeaderTests
{
    private const int ClusterSize = 65536;

    private static void PutU32(string path, long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        Files.WriteAt(path, offset, b);
    }

    private static void PutU64(string path, long offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        Files.WriteAt(path, offset, b);
    }

    /// <summary>A v3 image with a backing file (so it has a backing format extension), data and a snapshot.</summary>
    private static string MakeImage(TempDir dir)
    {
        string baseImg = dir.File("base.raw");
        File.WriteAllBytes(baseImg, new byte[1 << 20]);
        string img = dir.File("h.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", img, "4M");
        Qemu.Io(img, "qcow2", "write -P 1 0 128k");
        Qemu.Img("snapshot", "-c", "s1", img);
        return img;
    }

    public static TheoryData<string, long, int, ulong, string> Mutations => new()
    {
        // name, offset, width (4 or 8 bytes, 1 for a byte), value, expected words in the message
        { "version 1", 4, 4, 1, "version 1" },
        { "version 4", 4, 4, 4, "version 4" },
        { "cluster_bits 8", 20, 4, 8, "cluster_bits" },
        { "cluster_bits 22", 20, 4, 22, "cluster_bits" },
        { "cluster_bits 63", 20, 4, 63, "cluster_bits" },
        { "cluster_bits huge", 20, 4, 0xffffffff, "cluster_bits" },
        { "size 2^63", 24, 8, 1UL << 63, "size" },
        { "size needs more L1", 24, 8, 1UL << 40, "l1_size" },
        { "AES encryption", 32, 4, 1, "encrypted" },
        { "LUKS encryption", 32, 4, 2, "encrypted" },
        { "l1_size huge", 36, 4, 0xffffffff, "l1_size" },
        { "l1_table_offset unaligned", 40, 8, 0x30001, "l1_table_offset" },
        { "l1_table_offset past the end", 40, 8, 1UL << 40, "l1_table_offset" },
        { "refcount_table_offset zero", 48, 8, 0, "refcount_table" },
        { "refcount_table_offset unaligned", 48, 8, 0x10200, "refcount_table" },
        { "refcount_table_offset past the end", 48, 8, 1UL << 50, "refcount_table" },
        { "refcount_table_clusters huge", 56, 4, 0xffffffff, "refcount_table" },
        { "nb_snapshots huge", 60, 4, 0xffffffff, "nb_snapshots" },
        { "snapshots_offset past the end", 64, 8, 1UL << 40, "snapshots_offset" },
        { "snapshots_offset unaligned", 64, 8, 0x10008, "snapshots_offset" },
        { "unknown incompatible bit", 72, 8, 1UL << 5, "unsupported qcow2 feature" },
        { "external data file bit", 72, 8, 1UL << 2, "external data file" },
        { "extended L2 bit", 72, 8, 1UL << 4, "extended L2" },
        { "compression type bit without zstd", 72, 8, 1UL << 3, "compression_type" },
        { "refcount_order 7", 96, 4, 7, "refcount_order" },
        { "header_length 100", 100, 4, 100, "header_length" },
        { "header_length odd", 100, 4, 105, "header_length" },
        { "header_length past the cluster", 100, 4, ClusterSize + 8, "header_length" },
        { "compression_type 2", 104, 1, 2, "compression_type" },
        { "backing_file_offset past the cluster", 8, 8, ClusterSize + 16, "backing_file_offset" },
        { "backing_file_size 4000", 16, 4, 4000, "backing_file_size" },
        { "backing_file_offset inside the header", 8, 8, 16, "backing_file_offset" },
        { "extension length past the backing name", 116, 4, 0x7fffffff, "header extension" },
        { "backing format extension empty", 116, 4, 0, "backing format" },
    };

    [Theory]
    [MemberData(nameof(Mutations))]
    public void HostileFieldIsRefusedWithOneLineAndNoWrite(string name, long offset, int width, ulong value, string expected)
    {
        using var dir = new TempDir();
        string img = MakeImage(dir);
        switch (width)
        {
            case 1:
                Files.WriteAt(img, offset, [(byte)value]);
                break;
            case 4:
                PutU32(img, offset, (uint)value);
                break;
            default:
                PutU64(img, offset, value);
                break;
        }

        string before = Files.Hash(img);
        foreach (bool readOnly in new[] { true, false })
        {
            var e = Assert.ThrowsAny<BadImageException>(() =>
                ImageOpener.Open(img, new ImageOpenOptions { ReadOnly = readOnly }).Dispose());
            Assert.DoesNotContain('\n', e.Message);
            Assert.StartsWith(img + ":", e.Message);
            if (readOnly)
            {
                Assert.True(e.Message.Contains(expected, StringComparison.OrdinalIgnoreCase), $"{name}: '{e.Message}' does not mention '{expected}'");
            }
        }

        Assert.Equal(before, Files.Hash(img));
    }

    [Fact]
    public void SnapshotEntryPastTheFileIsRefused()
    {
        using var dir = new TempDir();
        string img = MakeImage(dir);
        long table = (long)Files.ReadRange(img, 64, 8).Aggregate(0UL, (a, b) => (a << 8) | b);
        PutU64(img, table, 1UL << 40); // the snapshot's L1 table offset
        string before = Files.Hash(img);
        var e = Assert.ThrowsAny<BadImageException>(() => Engine.OpenRo(img).Dispose());
        Assert.Contains("snapshot table entry 0", e.Message);
        Assert.Equal(before, Files.Hash(img));
    }

    [Fact]
    public void CorruptL2OffsetFailsOnlyThatRead()
    {
        using var dir = new TempDir();
        string img = dir.File("c.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", img, "1G");
        Qemu.Io(img, "qcow2", "write -P 7 0 64k", "write -P 8 600M 64k");
        long l1 = (long)Files.ReadRange(img, 40, 8).Aggregate(0UL, (a, b) => (a << 8) | b);
        PutU64(img, l1, (1UL << 63) | (1UL << 40)); // first L2 table: far past the end of the file
        using IBlockImage image = Engine.OpenRo(img);
        byte[] buf = new byte[4096];
        var e = Assert.Throws<CorruptImageException>(() => image.Read(0, buf));
        Assert.Equal(5, e.HResult);
        image.Read(600L << 20, buf);
        Assert.All(buf, b => Assert.Equal(8, b));
    }

    /// <summary>
    /// QEMU killed with lazy refcounts in use leaves the dirty bit (and leaked or missing
    /// refcounts): the image reads back read-only without a write, and a read-write open
    /// rebuilds the refcounts, clears the bit and leaves an image qemu-img check finds clean.
    /// </summary>
    [Fact]
    public void DirtyBitFromACrashedQemuIsRepairedByAReadWriteOpen()
    {
        using var dir = new TempDir();
        string img = dir.File("lazy.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", img, "4M");
        Qemu.Io(img, "qcow2", "write -P 7 0 64k");
        ToolResult crashed = Qemu.Run("qemu-io", ["-f", "qcow2", "-c", "write -P 9 0 128k", "-c", "write -P 8 1M 300k", "-c", "abort", img]);
        Assert.NotEqual(0, crashed.ExitCode);
        Assert.NotEqual(0UL, BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(img, 72, 8)) & 1);
        Assert.NotEqual(0, Qemu.Check(img, "qcow2").Exit); // the refcounts really are off
        byte[] qemuView = File.ReadAllBytes(Qemu.ConvertToRaw(img, dir.Path, "qcow2"));
        string before = Files.Hash(img);
        using (IBlockImage image = Engine.OpenRo(img))
        {
            Assert.True(image.GetInfo().DirtyFlag);
            Files.AssertBytesEqual(qemuView, Engine.ReadChunked(image, 0, qemuView.Length, 65536), 0, "read-only view of the dirty image");
        }

        Assert.Equal(before, Files.Hash(img));
        var log = new List<string>();
        byte[] written = Engine.Pattern(70000, 1);
        using (IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { Log = log.Add }))
        {
            Assert.False(image.GetInfo().DirtyFlag);
            image.Write(2 << 20, written);
        }

        written.CopyTo(qemuView, 2 << 20);

        Assert.Contains(log, l => l.Contains("dirty bit"));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(img, 72, 8)) & 1);
        var (exit, _, raw) = Qemu.Check(img, "qcow2");
        Assert.True(exit == 0, raw.ToString());
        using IBlockImage reopened = Engine.OpenRo(img);
        Files.AssertBytesEqual(qemuView, Engine.ReadChunked(reopened, 0, qemuView.Length, 65536), 0, "after the repairing open and a write");
    }

    /// <summary>Autoclear bits (here: bitmaps consistent) are cleared by a read-write open, left alone by a read-only one.</summary>
    [Fact]
    public void ReadWriteOpenClearsAutoclearBits()
    {
        using var dir = new TempDir();
        string img = MakeImage(dir);
        PutU64(img, 88, 1);
        Engine.OpenRo(img).Dispose();
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(img, 88, 8)));
        Engine.OpenRw(img).Dispose();
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64BigEndian(Files.ReadRange(img, 88, 8)));
        Assert.Equal(0, Qemu.Check(img, "qcow2").Exit);
    }

    [Fact]
    public void CorruptBitStillOpensReadOnlyWithAWarning()
    {
        using var dir = new TempDir();
        string img = MakeImage(dir);
        PutU64(img, 72, 1UL << 1);
        var log = new List<string>();
        using IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { ReadOnly = true, Log = log.Add });
        Assert.Contains(log, l => l.Contains("corrupt"));
        byte[] buf = new byte[512];
        image.Read(0, buf);
        Assert.All(buf, b => Assert.Equal(1, b));
    }
}
