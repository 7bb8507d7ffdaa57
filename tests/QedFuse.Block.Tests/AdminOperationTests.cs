namespace QedFuse.Block.Tests;

/// <summary>
/// The driver interface's administrative operations (resize, change of backing file, emptying)
/// that the image tools build on, per format, with qemu-img as the oracle. A new format driver
/// adds its name to the theories.
/// </summary>
public class AdminOperationTests
{
    private static string Create(TempDir t, string format, string name, long size, string? backing = null)
    {
        string path = t.File(name);
        ImageOpener.Create(path, format, new ImageCreateOptions { Size = size, BackingFile = backing, BackingFormat = backing is null ? null : "raw" });
        return path;
    }

    [Theory]
    [InlineData("qed")]
    [InlineData("raw")]
    public void Resize_grows_the_disk_and_the_new_range_reads_zero_and_takes_writes(string format)
    {
        using var t = new TempDir();
        string path = Create(t, format, "a." + format, 1 << 20);
        byte[] old = Engine.Pattern(1 << 20, 1), fresh = Engine.Pattern(70000, 2);
        using (IBlockImage image = Engine.OpenRw(path))
        {
            image.Write(0, old);
            image.Resize(3 << 20);
            Assert.Equal(3L << 20, image.VirtualSize);
            Assert.All(Engine.ReadChunked(image, 1 << 20, 1 << 20, 65536), b => Assert.Equal(0, b));
            image.Write((2 << 20) + 5, fresh);
        }

        using (IBlockImage image = Engine.OpenRo(path))
        {
            Assert.Equal(3L << 20, image.VirtualSize);
            Assert.Equal(old, Engine.ReadChunked(image, 0, 1 << 20, 65536));
            Assert.Equal(fresh, Engine.ReadChunked(image, (2 << 20) + 5, fresh.Length, 4096));
        }

        if (format == "qed")
        {
            Qemu.AssertClean(path);
        }

        byte[] seen = Files.ReadRange(Qemu.ConvertToRaw(path, t.Path, format), (2 << 20) + 5, fresh.Length);
        Assert.Equal(fresh, seen);
    }

    [Fact]
    public void Qed_set_backing_file_moves_the_name_clear_of_the_old_one_and_qemu_follows()
    {
        using var t = new TempDir();
        Engine.CreateRawBacking(t.File("b1.raw"), 1 << 20, 1);
        byte[] second = Engine.CreateRawBacking(t.File("a-longer-name-for-the-second-base.raw"), 1 << 20, 2);
        string path = Create(t, "qed", "ov.qed", 1 << 20, "b1.raw");
        uint oldOffset = (uint)(Files.ReadU64(path, 56) & uint.MaxValue);

        using (IBlockImage image = Engine.OpenRw(path))
        {
            image.SetBackingFile("a-longer-name-for-the-second-base.raw", "raw");
        }

        // The new name overlaps the old one at offset 64, so it went after it: a crash in between leaves the old name whole.
        Assert.Equal(oldOffset + (uint)"b1.raw".Length, (uint)(Files.ReadU64(path, 56) & uint.MaxValue));
        Qemu.AssertClean(path);
        Assert.Equal("a-longer-name-for-the-second-base.raw", Qemu.Info(path).GetStringOrNull("backing-filename"));
        Assert.Equal("raw", Qemu.Info(path).GetStringOrNull("backing-filename-format"));
        using (IBlockImage image = Engine.OpenRo(path))
        {
            Assert.Equal(second, Engine.ReadChunked(image, 0, 1 << 20, 65536));
        }

        using (IBlockImage image = Engine.OpenRw(path))
        {
            image.SetBackingFile(null, null);
        }

        Qemu.AssertClean(path);
        Assert.Null(Qemu.Info(path).GetStringOrNull("backing-filename"));
    }

    [Fact]
    public void Qed_make_empty_drops_every_cluster_and_reads_the_backing_file_again()
    {
        using var t = new TempDir();
        byte[] base1 = Engine.CreateRawBacking(t.File("b.raw"), 2 << 20, 3);
        string path = Create(t, "qed", "ov.qed", 2 << 20, "b.raw");
        using (IBlockImage image = Engine.OpenRw(path))
        {
            image.Write(4096, Engine.Pattern(300000, 4));
            image.WriteZeroes(1 << 20, 65536, unmap: false);
            image.Flush();
            image.MakeEmpty();
            Assert.Equal(new Allocation(AllocationState.Unallocated, 2 << 20), image.GetAllocation(0, 2 << 20) with { Length = 2 << 20 });
            Assert.Equal(base1, Engine.ReadChunked(image, 0, 2 << 20, 1 << 20));
        }

        Qemu.AssertClean(path);
        Qemu.AssertSameAsRaw(path, t.File("b.raw"));
        Assert.True(new FileInfo(path).Length <= 65536 + 4 * 65536, $"file still {new FileInfo(path).Length} bytes");
    }

    [Fact]
    public void Formats_without_an_operation_refuse_it_in_one_line_naming_the_image()
    {
        using var t = new TempDir();
        string path = Create(t, "raw", "a.raw", 1 << 20);
        using IBlockImage image = Engine.OpenRw(path);
        var e = Assert.Throws<BadImageException>(() => image.SetBackingFile("x.raw", "raw"));
        Assert.Contains(path, e.Message);
        Assert.Throws<BadImageException>(() => image.MakeEmpty());
        Assert.Equal(1L << 20, new FileInfo(path).Length);
    }
}
