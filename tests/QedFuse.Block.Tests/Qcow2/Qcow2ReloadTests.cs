namespace QedFuse.Block.Tests.Qcow2;

/// <summary>Reload of a read-only qcow2 image that QEMU changes underneath: new clusters, size, backing file and snapshots, as qemu-img reads them.</summary>
public sealed class Qcow2ReloadTests
{
    [Fact]
    public void Reload_sees_new_clusters_a_new_size_a_new_backing_file_and_snapshots()
    {
        using var t = new TempDir();
        string img = t.File("a.qcow2");
        Engine.CreateRawBacking(t.File("base1.raw"), 8 << 20, seed: 1);
        Engine.CreateRawBacking(t.File("base2.raw"), 8 << 20, seed: 2);
        Qemu.Img("create", "-q", "-f", "qcow2", "-b", "base1.raw", "-F", "raw", img, "8M");
        Qemu.Io(img, "qcow2", "write -P 0x11 0 64k");

        using IBlockImage image = Engine.OpenRo(img, forceShare: true);
        _ = Engine.ReadChunked(image, 0, 2 << 20, 1 << 20); // loads the L2 table

        Qemu.Io(img, "qcow2", "write -P 0x22 0 64k", "write -c -P 0x33 1M 64k");
        Qemu.Img("snapshot", "-c", "later", img);
        Qemu.Img("resize", "-q", "-f", "qcow2", img, "16M");
        Qemu.Img("rebase", "-u", "-f", "qcow2", "-b", "base2.raw", "-F", "raw", img);

        image.Reload();
        byte[] expected = File.ReadAllBytes(Qemu.ConvertToRaw(img, t.Path, "qcow2"));
        Assert.Equal(expected.LongLength, image.VirtualSize);
        Files.AssertBytesEqual(expected, Engine.ReadChunked(image, 0, expected.Length, 1 << 20), 0, "after reload");
        Assert.Equal(t.File("base2.raw"), image.Backing!.Path);
        Assert.Equal("later", Assert.Single(image.GetInfo().Snapshots).Name);

        using IBlockImage writable = Engine.OpenRw(img);
        Assert.Throws<InvalidOperationException>(writable.Reload);
    }
}
