using QedFuse.Reliability.Tests.Support;
using Xunit.Abstractions;

namespace QedFuse.Reliability.Tests.Mount;

/// <summary>
/// The host file system under the image fills up while a mount writes: the writer gets
/// ENOSPC (not EIO, not a hang), the mount keeps serving what was written, and after unmount
/// the image checks without corruption and holds every byte that was fsync'ed.
/// </summary>
public sealed class EnospcTests(ITestOutputHelper output)
{
    private const int Chunk = 1 << 20;
    private const int Enospc = 28;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Host_full_gives_enospc_and_keeps_fsynced_data(bool freeSpaceBeforeUnmount)
    {
        using var dir = new TempDir("qedfuse-enospc-");
        string host = dir.NewDir("host");
        Proc.Ok("mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "qedfuse-rel-enospc", host);
        try
        {
            string image = Path.Combine(host, "disk.qed");
            string filler = Path.Combine(host, "filler");
            File.WriteAllBytes(filler, new byte[4 << 20]); // freed later to make room again
            Assert.Equal(0, Qedfuse.Run("create", "-f", "qed", image, "64M").ExitCode);

            int synced = 0; // chunks written and fsync'ed before the failure
            Exception? failure = null;
            using (QedfuseMount m = QedfuseMount.Start(image, dir.NewDir("mnt")))
            {
                var writer = Task.Run(() =>
                {
                    using var h = File.OpenHandle(m.RawFile, FileMode.Open, FileAccess.ReadWrite);
                    for (int i = 0; i < 64; i++)
                    {
                        RandomAccess.Write(h, Pattern(i), (long)i * Chunk);
                        RandomAccess.FlushToDisk(h);
                        synced = i + 1;
                    }
                });
                Assert.True(Proc.WaitUntil(() => writer.IsCompleted, TimeSpan.FromSeconds(90)), $"writer hung after {synced} chunks");
                failure = writer.Exception?.InnerException;
                output.WriteLine($"{synced} MiB written and fsync'ed, then: {failure?.GetType().Name} {failure?.HResult} {failure?.Message}");
                Assert.NotNull(failure);
                Assert.True(failure is IOException { HResult: Enospc } || failure.Message.Contains("No space left", StringComparison.Ordinal),
                    $"expected ENOSPC, got {failure.GetType().Name} (HResult {failure.HResult}): {failure.Message}");
                Assert.InRange(synced, 8, 31);

                // The mount still serves what was written before.
                using (var h = File.OpenHandle(m.RawFile, FileMode.Open, FileAccess.Read))
                {
                    var buf = new byte[Chunk];
                    for (int i = 0; i < synced; i++)
                    {
                        Assert.Equal(Chunk, RandomAccess.Read(h, buf, (long)i * Chunk));
                        Assert.True(buf.AsSpan().SequenceEqual(Pattern(i)), $"chunk {i} reads back wrong through the mount after ENOSPC");
                    }
                }

                if (freeSpaceBeforeUnmount)
                {
                    File.Delete(filler);
                }

                ProcResult u = m.Unmount();
                output.WriteLine($"unmount: {u}");
                if (freeSpaceBeforeUnmount)
                {
                    Assert.True(u.ExitCode == 0, $"unmount after freeing space: {u}");
                }
            }

            Assert.False(Qedfuse.IsMounted(dir["mnt"]));
            if (File.Exists(filler))
            {
                File.Delete(filler); // room for qemu-img check to open the image read-write if it needs to
            }

            ProcResult check = Proc.Run("qemu-img", "check", image);
            output.WriteLine($"qemu-img check: {check}");
            Assert.True(check.ExitCode is 0 or 3, $"qemu-img check found corruption or failed: {check}");

            string raw = dir["out.raw"];
            Proc.Ok("qemu-img", "convert", "-f", "qed", "-O", "raw", image, raw);
            using (var h = File.OpenHandle(raw, FileMode.Open, FileAccess.Read))
            {
                var buf = new byte[Chunk];
                for (int i = 0; i < synced; i++)
                {
                    Assert.Equal(Chunk, RandomAccess.Read(h, buf, (long)i * Chunk));
                    Assert.True(buf.AsSpan().SequenceEqual(Pattern(i)), $"fsync'ed chunk {i} lost after unmount (free space first: {freeSpaceBeforeUnmount})");
                }
            }
        }
        finally
        {
            Qedfuse.ForceUnmount(dir["mnt"]);
            if (Proc.Run("umount", host).ExitCode != 0)
            {
                Proc.Run("umount", "-l", host);
            }
        }
    }

    private static byte[] Pattern(int chunk)
    {
        var b = new byte[Chunk];
        new Random(1000 + chunk).NextBytes(b);
        return b;
    }
}
