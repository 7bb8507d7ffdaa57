using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>SEEK_DATA/SEEK_HOLE, fallocate, and the fixed size of the raw file.</summary>
public sealed class SeekAndFallocateTests
{
    private const long Size = 64L << 20;

    private static long Seek(int fd, long off, int whence)
    {
        long r = LibC.Lseek(fd, off, whence);
        return r < 0 ? -LibC.Errno : r;
    }

    /// <summary>What lseek should answer, from qemu-img map's data ranges.</summary>
    private static long Expected(List<(long Start, long Length)> data, long size, long off, int whence)
    {
        if (off >= size)
        {
            return -LibC.ENXIO;
        }

        foreach (var (s, l) in data)
        {
            if (off < s)
            {
                return whence == LibC.SEEK_DATA ? s : off;
            }

            if (off < s + l)
            {
                return whence == LibC.SEEK_DATA ? off : s + l;
            }
        }

        return whence == LibC.SEEK_DATA ? -LibC.ENXIO : off;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SeekDataAndHoleAgreeWithQemuImgMap(bool withBacking)
    {
        using var t = new TempDir();
        string img = t["top.qed"];
        if (withBacking)
        {
            Qemu.CreateQed(t["base.qed"], "64M");
            Qemu.Io(t["base.qed"], "write -P 1 8M 1M", "write -P 2 60M 4M");
            Qemu.CreateQed(img, "64M", 4096, 2, backing: "base.qed", backingFormat: "qed");
            Qemu.Io(img, "write -z 8M 64k", "write -P 3 9M 4k");
        }
        else
        {
            Qemu.CreateQed(img, "64M", 65536, 4);
        }

        Qemu.Io(img, "write -P 4 0 4k", "write -P 5 1000000 100000", "write -P 6 20M 64k", "write -z 20M 64k", "write -P 7 33M 1M");
        var data = Qemu.DataRanges(img);
        Assert.NotEmpty(data);

        using var m = Mounted.Start(t.Dir("mnt"), [img], ["-o", "ro"]);
        int fd = LibC.OpenOrThrow(m.File(), LibC.O_RDONLY);
        try
        {
            var probes = new SortedSet<long> { 0, 1, Size - 1, Size, Size + 1, Size + (1L << 30) };
            foreach (var (s, l) in data)
            {
                foreach (long d in new long[] { -1, 0, 1, l - 1, l, l + 1 })
                {
                    if (s + d >= 0)
                    {
                        probes.Add(s + d);
                    }
                }
            }

            var rnd = new Random(1);
            for (int i = 0; i < 50; i++)
            {
                probes.Add(rnd.NextInt64(Size));
            }

            foreach (long off in probes)
            {
                foreach (int whence in new[] { LibC.SEEK_DATA, LibC.SEEK_HOLE })
                {
                    long want = Expected(data, Size, off, whence);
                    long got = Seek(fd, off, whence);
                    Assert.True(want == got, $"lseek({off}, {(whence == LibC.SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE")}) = {got}, want {want}; map: {string.Join(" ", data)}");
                }
            }
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    [Fact]
    public void FallocatePunchAndZeroRangeReadAsZeros()
    {
        using var t = new TempDir();
        Run.Exec("truncate", "-s", "64M", t["base.raw"]).Ok();
        Qemu.IoFormat(t["base.raw"], "raw", "write -P 0x71 0 64M");
        Qemu.CreateQed(t["a.qed"], "64M", backing: "base.raw", backingFormat: "raw");
        Qemu.Io(t["a.qed"], "write -P 0x72 0 16M");
        Qemu.ToRaw(t["a.qed"], t["ref.raw"]);
        byte[] reference = File.ReadAllBytes(t["ref.raw"]);
        string baseHash = ImageFile.Hash(t["base.raw"]);

        // Allocated/unallocated, aligned/unaligned ranges.
        (string Flag, long Off, long Len)[] ops =
        [
            ("-p", 1 << 20, 1 << 20), ("-p", 3_000_001, 200_000), ("-z", 5 << 20, 3 << 20), ("-z", 7_777_777, 12345),
            ("-p", 20 << 20, 2 << 20), ("-z", 30_000_000, 1_000_003), ("-p", Size - 5000, 5000),
        ];
        using (var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]))
        {
            foreach (var (flag, off, len) in ops)
            {
                Run.Exec("fallocate", flag, "-o", off.ToString(), "-l", len.ToString(), m.File()).Ok();
                Array.Clear(reference, (int)off, (int)len);
                Assert.All(ImageFile.ReadRange(m.File(), off, (int)len), b => Assert.Equal(0, b));
            }

            Assert.Equal(Size, new FileInfo(m.File()).Length);
            Assert.True(reference.AsSpan().SequenceEqual(File.ReadAllBytes(m.File())), "contents after fallocate differ");
            Assert.Equal(0, m.Unmount().ExitCode);
        }

        File.WriteAllBytes(t["expected.raw"], reference);
        RunResult cmp = Qemu.ImgRaw("compare", "-f", "qed", "-F", "raw", t["a.qed"], t["expected.raw"]);
        Assert.True(cmp.ExitCode == 0, cmp.ToString());
        Assert.Equal(0, Qemu.Check(t["a.qed"]).ExitCode);
        Assert.Equal(baseHash, ImageFile.Hash(t["base.raw"]));
    }

    [Fact]
    public void OtherFallocateModesAndSizeChangesFail()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        Qemu.Io(t["a.qed"], "write -P 0x10 0 1M");
        using var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]);
        int fd = LibC.OpenOrThrow(m.File(), LibC.O_RDWR);
        try
        {
            const int keepSize = 1, collapse = 8, insert = 0x20, unshare = 0x40;
            foreach (int mode in new[] { 0, keepSize, collapse, insert, unshare | keepSize })
            {
                int r = LibC.Fallocate(fd, mode, 0, 65536);
                int err = LibC.Errno;
                Assert.True(r < 0 && err == LibC.EOPNOTSUPP, $"fallocate mode {mode:x}: {r} errno {err}");
            }

            // Zero range reaching past the end must not grow the file.
            int zr = LibC.Fallocate(fd, 0x10, Size - 4096, 8192);
            int zerr = LibC.Errno;
            Assert.Equal(Size, new FileInfo(m.File()).Length);
            Assert.True(zr < 0 && zerr == LibC.ENOSPC, $"zero range past the end: {zr} errno {zerr}");

            byte[] buf = new byte[4096];
            Assert.Equal(-LibC.ENOSPC, LibC.PWriteErr(fd, buf, Size));
            Assert.Equal(-LibC.ENOSPC, LibC.PWriteErr(fd, buf, Size + 12345));
            Assert.Equal(Size, new FileInfo(m.File()).Length);
            long partial = LibC.PWriteErr(fd, buf, Size - 100);
            Assert.Equal(100, partial);
            Assert.Equal(Size, new FileInfo(m.File()).Length);
            Assert.Equal(0, LibC.PReadErr(fd, buf, Size));

            Assert.Equal(0, LibC.FTruncate(fd, Size));
            Assert.True(LibC.FTruncate(fd, Size - 4096) < 0, "shrinking truncate succeeded");
            Assert.True(LibC.FTruncate(fd, Size + 4096) < 0, "growing truncate succeeded");
            Assert.Equal(Size, new FileInfo(m.File()).Length);
            Assert.Equal(0x10, ImageFile.ReadRange(m.File(), 1000, 1)[0]);
        }
        finally
        {
            LibC.Close(fd);
        }

        // O_TRUNC on open is a size change too.
        Assert.ThrowsAny<Exception>(() => new FileStream(m.File(), FileMode.Truncate, FileAccess.Write).Dispose());
        Assert.Equal(Size, new FileInfo(m.File()).Length);
        Assert.Equal(0x10, ImageFile.ReadRange(m.File(), 1000, 1)[0]);
        Run.Exec("truncate", "-s", "64M", m.File()).Ok();
    }

    [Fact]
    public void ODirectWritePastEndFails()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        using var m = Mounted.Start(t.Dir("mnt"), t["a.qed"]);
        RunResult dd = Run.Exec("dd", "if=/dev/zero", $"of={m.File()}", "bs=4096", $"seek={Size / 4096}", "count=1", "oflag=direct", "conv=notrunc", "status=none");
        Assert.NotEqual(0, dd.ExitCode);
        Assert.Contains("No space left", dd.Stderr);
        Assert.Equal(Size, new FileInfo(m.File()).Length);
    }
}
