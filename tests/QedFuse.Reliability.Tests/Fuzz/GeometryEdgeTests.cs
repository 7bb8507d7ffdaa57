using System.Buffers.Binary;
using QedFuse.Block;
using QedFuse.Reliability.Tests.Support;

namespace QedFuse.Reliability.Tests.Fuzz;

/// <summary>
/// Hand-made headers at the edges of QED's geometry that random mutation of small seeds cannot
/// reach (they need clusters of megabytes and files of tens of megabytes): the same contract
/// as the fuzz cases applies.
/// </summary>
public sealed class GeometryEdgeTests
{
    public static TheoryData<uint, uint, ulong> Cases => new()
    {
        // 2 MiB clusters, table_size 8: the geometry addresses exactly 2^63 bytes.
        { 2u << 20, 8, (1UL << 63) - 512 },       // the largest size a signed 64-bit offset can hold
        { 8u << 20, 1, 0x0ffffffffffffe00UL },
    };

    // image_size 2^63 is a multiple of 512 within these geometries' reach but not a valid (signed) size.
    [Theory]
    [InlineData(2u << 20, 8u)]
    [InlineData(8u << 20, 1u)]
    public void Image_size_of_2_pow_63_is_rejected(uint clusterSize, uint tableSize)
    {
        var (openedRo, openedRw) = ExerciseBoth(clusterSize, tableSize, 1UL << 63);
        Assert.False(openedRo, "image_size 2^63 opened read-only");
        Assert.False(openedRw, "image_size 2^63 opened read-write");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Extreme_geometry_is_handled_or_rejected_cleanly(uint clusterSize, uint tableSize, ulong imageSize) =>
        ExerciseBoth(clusterSize, tableSize, imageSize);

    /// <summary>The fuzz contract, read-only then read-write; an open must show the header's size.</summary>
    private static (bool ReadOnly, bool ReadWrite) ExerciseBoth(uint clusterSize, uint tableSize, ulong imageSize)
    {
        using var dir = new TempDir("qedfuse-geo-", memory: true);
        string path = MakeEdgeImage(dir, clusterSize, tableSize, imageSize);
        var problems = new List<string>();
        var stats = new FuzzCase.Stats();
        bool opened = FuzzCase.Exercise(path, readOnly: true, new Random(1), problems, stats, out _);
        if (opened)
        {
            using IBlockImage img = ImageOpener.Open(path, new ImageOpenOptions { ReadOnly = true });
            Assert.True(img.VirtualSize > 0, $"image_size 0x{imageSize:x} opened with virtual size {img.VirtualSize}");
            Assert.True((ulong)img.VirtualSize == imageSize, $"virtual size {img.VirtualSize} != image_size {imageSize}");
        }

        bool openedRw = FuzzCase.Exercise(path, readOnly: false, new Random(2), problems, stats, out _);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        return (opened, openedRw);
    }

    /// <summary>
    /// Writes and zeroes at the very end of the largest geometries, where a cluster's end is
    /// 2^63 and does not fit in a long: every request must finish and read back as a plain
    /// byte array of the last two clusters says.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Writes_and_zeroes_at_the_end_of_an_extreme_geometry_read_back(uint clusterSize, uint tableSize, ulong imageSize)
    {
        using var dir = new TempDir("qedfuse-geo-", memory: true);
        string path = MakeEdgeImage(dir, clusterSize, tableSize, imageSize);
        using IBlockImage img = ImageOpener.Open(path, new ImageOpenOptions());
        long size = img.VirtualSize;
        long lastCluster = (size - 1) / clusterSize * clusterSize;
        long start = lastCluster - clusterSize;
        var model = new byte[size - start];
        var rng = new Random(7);

        void Write(long at, int length)
        {
            var data = new byte[length];
            rng.NextBytes(data);
            Within($"Write({at}, {length})", () => img.Write(at, data));
            data.CopyTo(model, at - start);
        }

        void Zero(long at, long length, bool unmap)
        {
            Within($"WriteZeroes({at}, {length}, {unmap})", () => img.WriteZeroes(at, length, unmap));
            Array.Clear(model, (int)(at - start), (int)length);
        }

        void Verify(string after)
        {
            var back = new byte[model.Length];
            Within($"Read({start}, {back.Length})", () => img.Read(start, back));
            int diff = back.AsSpan().CommonPrefixLength(model);
            Assert.True(diff == model.Length, $"after {after}: virtual offset {start + diff} differs from what was written");
        }

        Write(start + 512, model.Length - 512);
        Zero(size - 512, 512, unmap: false);                     // the last sector
        Verify("zeroing the last sector");
        Zero(lastCluster, 512, unmap: false);                     // the first sector of the last cluster
        Verify("zeroing the first sector of the last cluster");
        Zero(lastCluster + 4096, size - lastCluster - 8192, unmap: true);
        Verify("zeroing the middle of the last cluster");
        Write(size - 4096, 4096);
        Zero(lastCluster, size - lastCluster, unmap: true);       // the whole last cluster
        Verify("zeroing the whole last cluster");
        Write(lastCluster - 512, 1024);                           // across the last cluster boundary
        Zero(start + 512, size - start - 512, unmap: false);      // to the end, from mid-cluster
        Verify("zeroing to the end");
    }

    /// <summary>Runs one request with a bound: an arithmetic overflow shows as a request that never finishes.</summary>
    private static void Within(string what, Action request)
    {
        Task t = Task.Run(request);
        Assert.True(t.Wait(TimeSpan.FromSeconds(60)), $"{what} did not finish in 60 s");
    }

    private static string MakeEdgeImage(TempDir dir, uint clusterSize, uint tableSize, ulong imageSize)
    {
        string path = dir["edge.qed"];
        var header = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0x00444551);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), clusterSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), tableSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), 1);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(40), clusterSize);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(48), imageSize);
        using (var h = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            RandomAccess.Write(h, header, 0);
            RandomAccess.SetLength(h, clusterSize + (long)clusterSize * tableSize); // sparse: header + empty L1
        }

        return path;
    }
}
