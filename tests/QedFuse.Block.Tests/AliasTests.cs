namespace QedFuse.Block.Tests;

/// <summary>
/// L2 entries that alias metadata or another entry's cluster, or that pointed past the end
/// of the file when it was opened: a write through them must fail with EIO (as a read does),
/// never land on a table or another cluster's data and report success. The oracle for what
/// must survive is qemu-img convert of the image afterwards. The image is CheckTests' (4K
/// clusters, table_size 4: L2 table 0 maps 8 MiB, table 1 the rest).
/// </summary>
public class AliasTests
{
    private const int C = 4096;
    private const int Victim = 10; // an unallocated cluster of L2 table 0, made to alias something

    [Theory]
    [InlineData("l1-table")]
    [InlineData("own-l2-table")]
    [InlineData("other-l2-table")]
    [InlineData("other-data-cluster")]
    [InlineData("past-eof-at-open")]
    public void WriteThroughAnAliasingEntryFailsWithEioAndLosesNothing(string what)
    {
        using var dir = new TempDir();
        string img = CheckTests.MakeGood(dir);
        long l1 = (long)Files.ReadU64(img, 40);
        long table0 = (long)Files.ReadU64(img, l1);
        long table1 = (long)Files.ReadU64(img, l1 + 8);
        long length = new FileInfo(img).Length;
        ulong target = what switch
        {
            "l1-table" => (ulong)l1,
            "own-l2-table" => (ulong)table0,
            "other-l2-table" => (ulong)table1,
            "other-data-cluster" => Files.ReadU64(img, table0), // virtual cluster 0's data
            "past-eof-at-open" => (ulong)(length + 10 * C),
            _ => throw new ArgumentException(what),
        };
        Files.WriteU64(img, table0 + 8 * Victim, target);

        byte[] grown = Engine.Pattern(64 * C, 5);
        using (IBlockImage image = Engine.OpenRw(img))
        {
            // Allocations grow the file past the entry that pointed beyond its end.
            image.Write(4L << 20, grown);

            var write = Assert.Throws<CorruptImageException>(() => image.Write((long)Victim * C, Engine.Pattern(C, 9)));
            Assert.Equal(5, write.HResult);
            Assert.Contains(img, write.Message);
            Assert.Throws<CorruptImageException>(() => image.Read((long)Victim * C, new byte[C]));
            Assert.Throws<CorruptImageException>(() => image.WriteZeroes((long)Victim * C, C, unmap: false));
            image.Flush();
        }

        byte[] raw = File.ReadAllBytes(Qemu.ConvertToRaw(img, dir.Path));
        void Expect(long at, int n, byte value, string region) =>
            Assert.True(raw.AsSpan((int)at, n).IndexOfAnyExcept(value) < 0, $"{what}: {region} was overwritten");
        Expect(0, 4 * C, 0x11, "the data at 0");
        Expect(20 * C, C, 0x22, "the data at cluster 20");
        Expect(9 << 20, 2 * C, 0x33, "the data at 9 MiB");
        Files.AssertBytesEqual(grown, raw.AsSpan(4 << 20, grown.Length), 4L << 20, $"{what}: the data written at 4 MiB");
    }

    [Fact]
    public void TwoL1EntriesSharingOneL2TableFailInsteadOfMixingTheirData()
    {
        using var dir = new TempDir();
        string img = CheckTests.MakeGood(dir);
        long l1 = (long)Files.ReadU64(img, 40);
        Files.WriteU64(img, l1 + 8, Files.ReadU64(img, l1)); // L1 entry 1 -> table 0

        using (IBlockImage image = Engine.OpenRw(img))
        {
            Assert.Throws<CorruptImageException>(() => image.Write(9 << 20, new byte[C]));
            Assert.Throws<CorruptImageException>(() => image.Write(5 * C, new byte[C]));
            Assert.Throws<CorruptImageException>(() => image.Read(0, new byte[C]));
        }
    }
}
