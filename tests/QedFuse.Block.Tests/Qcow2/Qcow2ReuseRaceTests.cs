namespace QedFuse.Block.Tests.Qcow2;

/// <summary>
/// A cluster freed (discard) while a write into it is still running must not be handed to
/// another virtual cluster until that write is over; otherwise the late write lands in the
/// other cluster's data. Made deterministic with the host-file hook: the in-place write is
/// held inside the host write until the discard, a flush and a new allocation have happened.
/// </summary>
public class Qcow2ReuseRaceTests
{
    private sealed class HoldFirstWriteAt(long hostStart, long hostEnd) : IHostFileHook
    {
        public ManualResetEventSlim Entered { get; } = new();
        public ManualResetEventSlim Release { get; } = new();
        public volatile bool Armed;

        public void Before(HostFile file, IoEvent e, long offset, long length)
        {
            if (Armed && e == IoEvent.DataWrite && offset >= hostStart && offset < hostEnd)
            {
                Armed = false;
                Entered.Set();
                Assert.True(Release.Wait(TimeSpan.FromSeconds(60)), "the held write was never released");
            }
        }

        public void After(HostFile file, IoEvent e, long offset, long length)
        {
        }
    }

    [Fact]
    public async Task ClusterFreedUnderARunningWriteIsNotReusedUntilItEnds()
    {
        using var dir = new TempDir();
        string img = dir.File("race.qcow2");
        const int c = 65536;
        Qemu.Img("create", "-q", "-f", "qcow2", img, "4M");
        Qemu.Io(img, "qcow2", $"write -P 0x11 0 {c}");
        long host;
        using (IBlockImage probe = Engine.OpenRo(img))
        {
            host = probe.GetAllocation(0, c).HostOffset;
        }

        var hook = new HoldFirstWriteAt(host, host + c);
        byte[] late = Engine.Pattern(4096, 1);
        byte[] other = Engine.Pattern(c, 2);
        using (IBlockImage image = ImageOpener.Open(img, new ImageOpenOptions { HostFileHook = hook }))
        {
            hook.Armed = true;
            var writer = Task.Run(() => image.Write(0, late));
            Assert.True(hook.Entered.Wait(TimeSpan.FromSeconds(60)), "the in-place write did not start");

            image.WriteZeroes(0, c, unmap: true);
            image.Flush();
            image.Write(5L * c, other); // would reuse the freed cluster if nothing held it back
            image.Flush();
            hook.Release.Set();
            await writer.WaitAsync(TimeSpan.FromSeconds(60));
            image.Flush();
        }

        Assert.Equal(0, Qemu.Check(img, "qcow2").Exit);
        using IBlockImage check = Engine.OpenRo(img);
        byte[] got = new byte[c];
        check.Read(5L * c, got);
        Files.AssertBytesEqual(other, got, 5L * c, "the other cluster");
        check.Read(0, got);
        Assert.All(got, b => Assert.Equal(0, b));
    }
}
