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
    public void Image_size_of_2_pow_63_is_rejected_or_positive(uint clusterSize, uint tableSize) =>
        Extreme_geometry_is_handled_or_rejected_cleanly(clusterSize, tableSize, 1UL << 63);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Extreme_geometry_is_handled_or_rejected_cleanly(uint clusterSize, uint tableSize, ulong imageSize)
    {
        using var dir = new TempDir("qedfuse-geo-", memory: true);
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

        var problems = new List<string>();
        var stats = new FuzzCase.Stats();
        bool opened = FuzzCase.Exercise(path, readOnly: true, new Random(1), problems, stats, out _);
        if (opened)
        {
            using IBlockImage img = ImageOpener.Open(path, new ImageOpenOptions { ReadOnly = true });
            Assert.True(img.VirtualSize > 0, $"image_size 0x{imageSize:x} opened with virtual size {img.VirtualSize}");
            Assert.True((ulong)img.VirtualSize == imageSize, $"virtual size {img.VirtualSize} != image_size {imageSize}");
        }

        FuzzCase.Exercise(path, readOnly: false, new Random(2), problems, stats, out _);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
