using System.Text.Json;
using QedFuse.Block;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>
/// Images of formats QEMU knows and we do not read are named, never served or recorded as raw
/// (issue 13 items 2, 3). The images come from qemu-img itself.
/// </summary>
public sealed class ForeignFormatTests
{
    /// <summary>qcow2 is foreign until its driver is registered; the qcow2 tests follow whichever holds.</summary>
    private static bool Qcow2Readable => ImageOpener.Formats.Any(f => f.Name == "qcow2");

    [Theory]
    [InlineData("vmdk", "VMDK image")]
    [InlineData("vdi", "VDI (VirtualBox) image")]
    [InlineData("vhdx", "VHDX (Hyper-V) image")]
    [InlineData("vpc", "VHD (Virtual PC) image")]
    [InlineData("qcow", "qcow (version 1) image")]
    [InlineData("parallels", "Parallels image")]
    public void Foreign_image_is_named_by_info_map_check_and_mount(string format, string description)
    {
        using var t = new TempDir();
        string image = t[$"vm.{format}"];
        Qemu.Img("create", "-q", "-f", format, image, "1M");
        string hash = ImageFile.Hash(image);
        string mnt = t.Dir("mnt");

        foreach (string[] args in new[] { new[] { "info", image }, ["map", image], ["check", image], ["mount", image, mnt] })
        {
            RunResult r = Run.Exec(Env.Qedfuse, args, TimeSpan.FromSeconds(60));
            Assert.True(r.ExitCode != 0, $"expected a refusal: {r}");
            string line = Assert.Single(Text.Lines(r.Stderr));
            Assert.Contains($"{image}: {description}; qedfuse reads ", line);
            Assert.Contains($"qemu-img convert -O ", line);
            Assert.DoesNotContain("file format: raw", r.Stdout);
        }

        Assert.False(Mounts.IsMounted(mnt));
        Assert.Equal(hash, ImageFile.Hash(image));
    }

    [Fact]
    public void Luks_image_is_named()
    {
        using var t = new TempDir();
        string image = t["secret.luks"];
        Qemu.Img("create", "-q", "--object", "secret,id=s0,data=pw", "-f", "luks", "-o", "key-secret=s0,iter-time=10", image, "1M");
        RunResult r = Env.Qf("info", image);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"{image}: LUKS encrypted image; qedfuse reads ", Assert.Single(Text.Lines(r.Stderr)));
    }

    [Fact]
    public void Create_refuses_a_foreign_backing_file_and_writes_nothing()
    {
        using var t = new TempDir();
        Qemu.Img("create", "-q", "-f", "vdi", t["base.vdi"], "1M");
        RunResult r = Env.Qf("create", "-b", t["base.vdi"], t["overlay.qed"]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"{t["base.vdi"]}: VDI (VirtualBox) image", Assert.Single(Text.Lines(r.Stderr)));
        Assert.Equal([t["base.vdi"]], Directory.GetFiles(t.Path));
    }

    [Fact]
    public void Plain_raw_files_stay_raw()
    {
        using var t = new TempDir();
        File.WriteAllBytes(t["disk.img"], ImageFile.Bytes(1 << 20, 7));
        JsonElement info = JsonDocument.Parse(Env.Qf("info", "--output=json", t["disk.img"]).Ok().Stdout).RootElement;
        Assert.Equal("raw", info.GetProperty("format").GetString());
        Assert.Equal(1 << 20, info.GetProperty("virtual-size").GetInt64());
    }

    /// <summary>
    /// A qcow2 base: refused while no driver reads qcow2 (never recorded as raw); once one does,
    /// the overlay must read through to it as QEMU sees it.
    /// </summary>
    [Fact]
    public void Qcow2_base_is_refused_or_read_as_qcow2_never_as_raw()
    {
        using var t = new TempDir();
        string qcow2 = t["vm.qcow2"];
        Qemu.Img("create", "-q", "-f", "qcow2", qcow2, "1M");
        Qemu.Io(qcow2, "write -P 0xab 0 64k");
        RunResult info = Env.Qf("info", qcow2);
        RunResult create = Env.Qf("create", "-b", qcow2, t["overlay.qed"]);
        if (!Qcow2Readable)
        {
            Assert.NotEqual(0, info.ExitCode);
            Assert.Contains($"{qcow2}: qcow2 image; qedfuse reads ", Assert.Single(Text.Lines(info.Stderr)));
            Assert.NotEqual(0, create.ExitCode);
            Assert.Contains("qcow2 image", Assert.Single(Text.Lines(create.Stderr)));
            Assert.False(File.Exists(t["overlay.qed"]), "an overlay was written on a base we cannot read");
            return;
        }

        Assert.True(info.ExitCode == 0 && info.Stdout.Contains("file format: qcow2"), $"{info}");
        create.Ok();
        JsonElement overlay = JsonDocument.Parse(Qemu.Img("info", "--output=json", "--backing-chain", t["overlay.qed"]).Stdout).RootElement;
        Assert.Equal("qcow2", overlay[1].GetProperty("format").GetString());
        Assert.Equal(0, Qemu.ImgRaw("compare", t["overlay.qed"], qcow2).ExitCode);
    }
}
