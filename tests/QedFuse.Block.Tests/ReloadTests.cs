namespace QedFuse.Block.Tests;

/// <summary>
/// IBlockImage.Reload: a read-only image that QEMU changes underneath reads, after a reload,
/// exactly what qemu-img reads from the file now (tables, size and backing file included).
/// </summary>
public sealed class ReloadTests
{
    private static void AssertReadsLikeQemu(IBlockImage image, string path, TempDir t)
    {
        byte[] expected = File.ReadAllBytes(Qemu.ConvertToRaw(path, t.Path));
        Assert.Equal(expected.LongLength, image.VirtualSize);
        Files.AssertBytesEqual(expected, Engine.ReadChunked(image, 0, expected.Length, 1 << 20), 0, "after reload");
    }

    [Fact]
    public void Reload_sees_new_clusters_a_new_size_and_a_new_backing_file()
    {
        using var t = new TempDir();
        string img = t.File("a.qed");
        Engine.CreateRawBacking(t.File("base1.raw"), 8 << 20, seed: 1);
        Engine.CreateRawBacking(t.File("base2.raw"), 8 << 20, seed: 2);
        Qemu.Img("create", "-q", "-f", "qed", "-b", "base1.raw", "-F", "raw", img, "8M");
        Qemu.Io(img, "qed", "write -P 0x11 0 64k");

        using IBlockImage image = Engine.OpenRo(img, forceShare: true);
        byte[] before = Engine.ReadChunked(image, 0, 2 << 20, 1 << 20); // loads the L2 table

        // A cluster in the cached L2 table, an overwrite, a larger size, another backing file.
        Qemu.Io(img, "qed", "write -P 0x22 0 64k", "write -P 0x33 1M 64k");
        Qemu.Img("resize", "-q", "-f", "qed", img, "16M");
        Qemu.Img("rebase", "-u", "-f", "qed", "-b", "base2.raw", "-F", "raw", img);
        Assert.Equal(0x11, before[17]);

        image.Reload();
        AssertReadsLikeQemu(image, img, t);
        Assert.Equal(t.File("base2.raw"), image.Backing!.Path);

        // A second reload of an unchanged file changes nothing.
        image.Reload();
        AssertReadsLikeQemu(image, img, t);
    }

    [Fact]
    public void A_writable_image_refuses_to_reload()
    {
        using var t = new TempDir();
        string img = t.File("a.qed");
        Engine.CreateQed(img, 8 << 20);
        using IBlockImage image = Engine.OpenRw(img);
        Assert.Throws<InvalidOperationException>(image.Reload);
    }
}
