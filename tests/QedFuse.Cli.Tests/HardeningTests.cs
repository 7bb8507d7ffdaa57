using QedFuse.Block;
using QedFuse.Cli.Mount;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>
/// The mount's side of issue 8: close durable under concurrency, the background flusher's
/// clean mark, EFBIG as EFBIG, the backing file's lock, size-0 images and repeated -o.
/// </summary>
public sealed class HardeningTests
{
    private const ulong Ino = 2;

    [Fact]
    public void CloseOfAnotherDescriptorDuringAWriteDoesNotSwallowTheWritersFlush()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "64M");
        byte[] data = ImageFile.Bytes(65536, 7);
        using var gated = new GatedImage(ImageOpener.Open(img, new ImageOpenOptions()));
        var fs = new ImageFileSystem([gated]);
        int written = 0;
        var writer = new Thread(() => written = fs.Write(Ino, 1, 1 << 20, data));
        writer.Start();
        gated.WaitUntilWriteStarted();

        // close() of another descriptor while the write runs: its flush must not count the write as flushed.
        Assert.Equal(0, fs.Flush(Ino, 2));
        gated.LetTheWriteRun();
        Assert.True(writer.Join(TimeSpan.FromSeconds(60)), "the write did not finish");
        Assert.Equal(data.Length, written);

        // The writer's own close: the write is durable when it returns (qemu-img reads the file, sharing it).
        Assert.Equal(0, fs.Flush(Ino, 1));
        Qemu.ToRaw(img, t["out.raw"]);
        Assert.True(data.AsSpan().SequenceEqual(ImageFile.ReadRange(t["out.raw"], 1 << 20, data.Length)),
            "the write was not durable after its own close returned");
    }

    [Fact]
    public void BackgroundFlusherClearsNeedCheckWhenIdle()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "64M");
        byte[] data = ImageFile.Bytes(70000, 1);
        using IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions());
        image.Write(3 << 20, data);
        image.Flush();
        Assert.True(ImageFile.NeedCheck(img), "need-check must be set while the written metadata is not yet known clean");

        using (var flusher = new BackgroundFlusher([image], TimeSpan.FromMilliseconds(100)))
        {
            flusher.Start();
            Wait.Until(() => !ImageFile.NeedCheck(img), TimeSpan.FromSeconds(30), "the flusher to clear need-check");
        }

        // While open and idle the image is consistent for qemu-img (read with -U) and holds the data.
        RunResult check = Qemu.ImgRaw("check", "-U", img);
        Assert.True(check.ExitCode == 0, check.ToString());
        Qemu.ToRaw(img, t["out.raw"]);
        Assert.True(data.AsSpan().SequenceEqual(ImageFile.ReadRange(t["out.raw"], 3 << 20, data.Length)));
    }

    [Fact]
    public void HostFileSizeLimitReachesTheWriterAsEfbig()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "64M");
        string mnt = t.Dir("mnt");
        // RLIMIT_FSIZE of 2 MiB for the daemon (SIGXFSZ ignored, so the host write fails with EFBIG instead);
        // the runtime's double-mapped code pages would hit the limit too, so W^X is off.
        RunResult mount = Run.Sh($"trap '' XFSZ; ulimit -f 2048; DOTNET_EnableWriteXorExecute=0 exec '{Env.Qedfuse}' mount '{img}' '{mnt}'");
        int? pid = Mounts.ReadPid(mnt);
        try
        {
            Assert.True(mount.ExitCode == 0, mount.ToString());
            RunResult dd = Run.Sh($"dd if=/dev/zero of='{mnt}/a.raw' bs=64k count=64 seek=16 conv=notrunc oflag=direct 2>&1");
            Assert.NotEqual(0, dd.ExitCode);
            Assert.Contains("File too large", dd.Stdout);
            Assert.Equal(0, Env.Qf("unmount", mnt).ExitCode);
        }
        finally
        {
            Mounts.ForceCleanup(mnt, pid);
        }

        Assert.Equal(0, Qemu.Check(img).ExitCode);
    }

    [Fact]
    public void MountedOverlayKeepsOtherWritersOffItsBackingFileExceptUnderForceShare()
    {
        using var t = new TempDir();
        string baseImg = t["base.raw"];
        Qemu.Img("create", "-f", "raw", baseImg, "4M");
        Qemu.CreateQed(t["top.qed"], "4M", backing: "base.raw", backingFormat: "raw");
        string mnt = t.Dir("mnt");
        using (Mounted.Start(mnt, t["top.qed"]))
        {
            RunResult write = Run.Exec("qemu-io", "-f", "raw", "-c", "write -P 0x55 0 512", baseImg);
            Assert.NotEqual(0, write.ExitCode);
            Assert.Contains("lock", write.Stderr);
            RunResult resize = Qemu.ImgRaw("resize", "-f", "raw", baseImg, "8M");
            Assert.NotEqual(0, resize.ExitCode);
            Assert.Equal(4L << 20, new FileInfo(baseImg).Length);
            Assert.Equal(0, Qemu.ImgRaw("info", baseImg).ExitCode); // readers are welcome
        }

        using (Mounted.Start(mnt, [t["top.qed"]], ["-o", "ro,force_share"]))
        {
            Qemu.IoFormat(baseImg, "raw", "write -P 0x55 0 512"); // throws unless the write worked
        }
    }

    [Fact]
    public void SizeZeroImageMountsAsAnEmptyFile()
    {
        using var t = new TempDir();
        string img = t["empty.qed"];
        Qemu.Img("create", "-f", "qed", img, "0");
        using var m = Mounted.Start(t.Dir("mnt"), img);
        Assert.Equal(0, new FileInfo(m.File()).Length);
        Assert.Empty(File.ReadAllBytes(m.File()));
        Assert.Equal(0, m.Unmount().ExitCode);
        Assert.Equal(0, Qemu.Check(img).ExitCode);
    }

    [Fact]
    public void RepeatedOptionsAreMergedLikeMount8()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "4M");
        string before = ImageFile.Hash(img);
        string mnt = t.Dir("mnt");
        using (var m = Mounted.Start(mnt, [img], ["-o", "rw", "-o", "allow_other", "-oro"]))
        {
            string mountLine = File.ReadAllLines("/proc/self/mounts").Single(l => l.Split(' ')[1] == mnt);
            Assert.Contains("allow_other", mountLine);
            int fd = LibC.Open(m.File(), LibC.O_RDWR);
            Assert.True(fd < 0, "the last of the merged options (ro) did not take effect");
            Assert.Equal(LibC.EROFS, LibC.Errno);
        }

        Assert.Equal(before, ImageFile.Hash(img));
    }

    /// <summary>A real image whose first write waits, once started, until the test lets it run.</summary>
    private sealed class GatedImage(IBlockImage inner) : IBlockImage
    {
        private readonly ManualResetEventSlim _started = new();
        private readonly ManualResetEventSlim _release = new();
        private int _gated;

        public string Path => inner.Path;
        public string FormatName => inner.FormatName;
        public long VirtualSize => inner.VirtualSize;
        public bool IsReadOnly => inner.IsReadOnly;
        public IBlockImage? Backing => inner.Backing;
        public long AllocatedBytes => inner.AllocatedBytes;

        public void WaitUntilWriteStarted() => Assert.True(_started.Wait(TimeSpan.FromSeconds(60)), "the write never started");

        public void LetTheWriteRun() => _release.Set();

        public void Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            if (Interlocked.Exchange(ref _gated, 1) == 0)
            {
                _started.Set();
                Assert.True(_release.Wait(TimeSpan.FromSeconds(60)), "the test never released the write");
            }

            inner.Write(offset, data);
        }

        public void WriteZeroes(long offset, long length, bool unmap) => inner.WriteZeroes(offset, length, unmap);
        public Allocation GetAllocation(long offset, long length) => inner.GetAllocation(offset, length);
        public void Flush() => inner.Flush();
        public void Checkpoint() => inner.Checkpoint();
        public ImageInfo GetInfo() => inner.GetInfo();
        public CheckResult Check(CheckRepair repair) => inner.Check(repair);
        public void Dispose() => inner.Dispose();
    }
}
