using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using QedFuse.Fuse.Tests.Support;

namespace QedFuse.Fuse.Tests;

/// <summary>
/// Real mounts (root, /dev/fuse): every request goes through the kernel and back, and
/// results are compared with the in-memory file system's own arrays.
/// </summary>
public class MountTests
{
    private const int C = MemoryFileSystem.Chunk;

    [Fact]
    public void Root_directory_lists_its_entries()
    {
        using var m = TestMount.Start();
        string[] names = Directory.EnumerateFileSystemEntries(m.Dir).Select(Path.GetFileName).Order().ToArray()!;
        Assert.Equal(new[] { "data.bin", "many", "poison", "small.txt" }, names);
        Assert.Equal(1, m.Fs.InitCount);
    }

    [Fact]
    public void Large_directory_is_listed_completely_across_several_readdir_calls()
    {
        using var m = TestMount.Start();
        string[] names = Directory.EnumerateFiles(m.PathOf("many")).Select(p => Path.GetFileName(p)!).ToArray();
        string[] expected = Enumerable.Range(0, MemoryFileSystem.ManyCount).Select(MemoryFileSystem.ManyName).ToArray();
        Assert.Equal(expected.Length, names.Length); // no entry lost or repeated at buffer boundaries
        Assert.Equal(expected.Order(), names.Order());
    }

    [Fact]
    public void Stat_reports_size_mode_and_mtime()
    {
        using var m = TestMount.Start();
        var data = new FileInfo(m.PathOf("data.bin"));
        Assert.Equal(MemoryFileSystem.DataSize, data.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, data.UnixFileMode);
        Assert.Equal(MemoryFileSystem.FixedTime.ToDateTimeOffset().UtcDateTime, data.LastWriteTimeUtc);
        Assert.Equal(12, new FileInfo(m.PathOf("small.txt")).Length);
        Assert.True(Directory.Exists(m.PathOf("many")));
        Assert.False(File.Exists(m.PathOf("missing")));
    }

    [Fact]
    public void Reads_at_odd_offsets_and_lengths_match_the_backing_array()
    {
        using var m = TestMount.Start();
        byte[] expected = m.Fs.SnapshotData();
        using var h = File.OpenHandle(m.PathOf("data.bin"));
        (long Offset, int Length)[] cases =
        [
            (0, 1), (1, 4095), (4095, 2), (C - 3, 7), (C * 2 - 1, C + 5), (12345, 300_000), (5 * C + 17, 1 << 20),
            (MemoryFileSystem.DataSize - 4567, 4567), (MemoryFileSystem.DataSize - 1, 1),
        ];
        foreach (var (offset, length) in cases)
        {
            byte[] buf = new byte[length];
            int n = ReadFully(h, buf, offset);
            Assert.Equal(length, n);
            Assert.True(expected.AsSpan((int)offset, length).SequenceEqual(buf), $"mismatch at {offset}+{length}");
        }
        Assert.Equal("hello, fuse\n", File.ReadAllText(m.PathOf("small.txt")));
    }

    [Fact]
    public void Read_at_end_of_file_is_short_and_past_it_is_empty()
    {
        using var m = TestMount.Start();
        byte[] expected = m.Fs.SnapshotData();
        using var h = File.OpenHandle(m.PathOf("data.bin"));
        byte[] buf = new byte[8192];
        int n = RandomAccess.Read(h, buf, MemoryFileSystem.DataSize - 100);
        Assert.Equal(100, n);
        Assert.True(expected.AsSpan(MemoryFileSystem.DataSize - 100).SequenceEqual(buf.AsSpan(0, 100)));
        Assert.Equal(0, RandomAccess.Read(h, buf, MemoryFileSystem.DataSize));
        Assert.Equal(0, RandomAccess.Read(h, buf, MemoryFileSystem.DataSize + 100_000));
    }

    [Fact]
    public void Writes_reach_the_file_system_and_read_back()
    {
        using var m = TestMount.Start();
        var rng = new Random(7);
        byte[] expected = m.Fs.SnapshotData();
        using (var h = File.OpenHandle(m.PathOf("data.bin"), FileMode.Open, FileAccess.ReadWrite))
        {
            foreach (var (offset, length) in new (long, int)[] { (3, 10), (C * 3 - 5, 11), (7 * C + 1, 300_000), (MemoryFileSystem.DataSize - 9, 9) })
            {
                byte[] data = new byte[length];
                rng.NextBytes(data);
                RandomAccess.Write(h, data, offset);
                data.CopyTo(expected, offset);
            }
            // No writeback cache: each write() is sent synchronously, so the bytes are there now.
            Assert.True(expected.AsSpan().SequenceEqual(m.Fs.SnapshotData()));
            byte[] back = new byte[expected.Length];
            Assert.Equal(expected.Length, ReadFully(h, back, 0));
            Assert.True(expected.AsSpan().SequenceEqual(back));
        }
        Assert.True(m.Fs.FlushCount >= 1); // flush is synchronous in close(2)
        // release is sent asynchronously after the last close.
        Assert.True(TestMount.WaitUntil(() => Volatile.Read(ref m.Fs.ReleaseCount) >= 1, TestMount.Timeout));
    }

    [Fact]
    public void Fsync_reaches_the_file_system()
    {
        using var m = TestMount.Start();
        using var fs = new FileStream(m.PathOf("data.bin"), FileMode.Open, FileAccess.ReadWrite);
        fs.Write([1, 2, 3]);
        int before = m.Fs.FsyncCount;
        fs.Flush(flushToDisk: true);
        Assert.Equal(before + 1, m.Fs.FsyncCount);
        Assert.Equal(new byte[] { 1, 2, 3 }, m.Fs.SnapshotData()[..3]);
    }

    [Fact]
    public void Truncate_to_the_current_size_succeeds_and_other_sizes_are_refused()
    {
        using var m = TestMount.Start();
        using var fs = new FileStream(m.PathOf("data.bin"), FileMode.Open, FileAccess.ReadWrite);
        fs.SetLength(MemoryFileSystem.DataSize);
        Assert.ThrowsAny<Exception>(() => fs.SetLength(100)); // EPERM from the file system
        Assert.Equal(MemoryFileSystem.DataSize, new FileInfo(m.PathOf("data.bin")).Length);
    }

    [Fact]
    public void ODirect_read_with_dd_matches_and_uses_large_direct_requests()
    {
        using var m = TestMount.Start();
        string outFile = Path.GetTempFileName();
        try
        {
            (int rc, string err) = Run("dd", $"if={m.PathOf("data.bin")}", $"of={outFile}", "bs=4M", "iflag=direct", "status=none");
            Assert.True(rc == 0, "dd failed: " + err);
            Assert.True(m.Fs.SnapshotData().AsSpan().SequenceEqual(File.ReadAllBytes(outFile)));
            Assert.Equal(1, m.Fs.DirectOpenCount);
            // direct_io + max_write 1 MiB: the kernel sends 1 MiB reads, not 128 KiB readahead.
            Assert.Equal(1 << 20, m.Fs.MaxReadRequest);
        }
        finally
        {
            File.Delete(outFile);
        }
    }

    [Fact]
    public void Shared_writable_mmap_writes_reach_the_file_system()
    {
        using var m = TestMount.Start();
        byte[] payload = "written through a shared mapping"u8.ToArray();
        const long offset = 3 * C + 100; // inside a hole
        using (var mmf = MemoryMappedFile.CreateFromFile(m.PathOf("data.bin"), FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
        using (var view = mmf.CreateViewAccessor(0, MemoryFileSystem.DataSize, MemoryMappedFileAccess.ReadWrite))
        {
            byte[] expected = m.Fs.SnapshotData();
            byte[] seen = new byte[4096];
            view.ReadArray(C - 2048, seen, 0, seen.Length);
            Assert.True(expected.AsSpan(C - 2048, 4096).SequenceEqual(seen));
            view.WriteArray(offset, payload, 0, payload.Length);
            view.Flush(); // msync
        }
        Assert.True(TestMount.WaitUntil(() => m.Fs.SnapshotData().AsSpan((int)offset, payload.Length).SequenceEqual(payload), TestMount.Timeout),
            "mmap write never reached the file system");
    }

    [Fact]
    public void Lseek_data_and_hole_follow_the_file_systems_layout()
    {
        using var m = TestMount.Start();
        int fd = Posix.open(m.PathOf("data.bin"), Posix.O_RDONLY);
        Assert.True(fd >= 0);
        try
        {
            const long size = MemoryFileSystem.DataSize;
            // Allocated chunks: 0, 1, 5, 32 (the partial last one); the rest are holes.
            Assert.Equal(0, Posix.Lseek(fd, 0, Posix.SEEK_DATA));
            Assert.Equal(2 * C, Posix.Lseek(fd, 0, Posix.SEEK_HOLE));
            Assert.Equal(C + 7, Posix.Lseek(fd, C + 7, Posix.SEEK_DATA));
            Assert.Equal(5 * C, Posix.Lseek(fd, 2 * C + 1, Posix.SEEK_DATA));
            Assert.Equal(2 * C + 1, Posix.Lseek(fd, 2 * C + 1, Posix.SEEK_HOLE));
            Assert.Equal(6 * C, Posix.Lseek(fd, 5 * C + 10, Posix.SEEK_HOLE));
            Assert.Equal(32 * C, Posix.Lseek(fd, 6 * C, Posix.SEEK_DATA));
            Assert.Equal(size, Posix.Lseek(fd, 32 * C, Posix.SEEK_HOLE));
            Assert.Equal(-Errno.ENXIO, Posix.Lseek(fd, size, Posix.SEEK_DATA));
            Assert.Equal(-Errno.ENXIO, Posix.Lseek(fd, size, Posix.SEEK_HOLE));
        }
        finally
        {
            Posix.close(fd);
        }
    }

    [Fact]
    public void Fallocate_punch_hole_reaches_the_file_system_and_reads_as_zeros()
    {
        using var m = TestMount.Start();
        string path = m.PathOf("data.bin");
        byte[] before = File.ReadAllBytes(path); // fills the page cache, which the punch must invalidate
        Assert.Contains(before.Skip(C).Take(C), b => b != 0);
        (int rc, string err) = Run("fallocate", "-p", "-o", C.ToString(), "-l", C.ToString(), path);
        Assert.True(rc == 0, "fallocate failed: " + err);
        Assert.Contains((3, (long)C, (long)C), m.Fs.Fallocates); // PUNCH_HOLE | KEEP_SIZE
        byte[] after = File.ReadAllBytes(path);
        Assert.True(after.AsSpan(C, C).IndexOfAnyExcept((byte)0) < 0, "punched range does not read as zeros");
        Assert.True(before.AsSpan(0, C).SequenceEqual(after.AsSpan(0, C)));
        Assert.True(m.Fs.SnapshotData().AsSpan().SequenceEqual(after));
        using var h = File.OpenHandle(path);
        int fd = (int)h.DangerousGetHandle();
        Assert.Equal(C, Posix.Lseek(fd, 0, Posix.SEEK_HOLE));
    }

    [Fact]
    public void Exceptions_and_errors_of_the_file_system_become_errnos()
    {
        using var m = TestMount.Start();
        int fd = Posix.open(m.PathOf("poison"), Posix.O_RDONLY); // served with direct_io: errors reach us unchanged
        Assert.True(fd >= 0);
        try
        {
            byte[] buf = new byte[4096];
            int Errno(long offset) => Posix.pread(fd, buf, buf.Length, offset) < 0 ? System.Runtime.InteropServices.Marshal.GetLastPInvokeError() : 0;
            Assert.Equal(QedFuse.Fuse.Errno.ENOSPC, Errno(0));      // IOException carrying errno
            Assert.Equal(QedFuse.Fuse.Errno.EINVAL, Errno(4096));   // ArgumentOutOfRangeException
            Assert.Equal(QedFuse.Fuse.Errno.EIO, Errno(8192));      // any other exception
            Assert.Equal(QedFuse.Fuse.Errno.EROFS, Errno(12288));   // negative errno result
        }
        finally
        {
            Posix.close(fd);
        }
        // The mount survived all of that.
        Assert.Equal("hello, fuse\n", File.ReadAllText(m.PathOf("small.txt")));
    }

    [Fact]
    public void Concurrent_reads_from_several_threads_match()
    {
        using var m = TestMount.Start();
        byte[] expected = m.Fs.SnapshotData();
        using var h = File.OpenHandle(m.PathOf("data.bin"));
        int failures = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var rng = new Random(t);
            byte[] buf = new byte[256 * 1024];
            for (int i = 0; i < 200; i++)
            {
                long offset = rng.NextInt64(MemoryFileSystem.DataSize);
                int length = (int)Math.Min(rng.Next(1, buf.Length), MemoryFileSystem.DataSize - offset);
                int n = ReadFully(h, buf.AsSpan(0, length), offset);
                if (n != length || !expected.AsSpan((int)offset, length).SequenceEqual(buf.AsSpan(0, length)))
                    Interlocked.Increment(ref failures);
            }
        });
        Assert.Equal(0, failures);
    }

    [Fact]
    public void RequestUnmount_ends_the_loop_and_removes_the_mount()
    {
        using var m = TestMount.Start();
        Assert.True(File.Exists(m.PathOf("small.txt")));
        Assert.True(TestMount.IsMounted(m.Dir));
        m.Session.RequestUnmount();
        Assert.True(TestMount.Completes(m.Session.Completion), "loop did not return after unmount");
        Assert.False(TestMount.IsMounted(m.Dir));
        m.Session.RequestUnmount(); // harmless once the connection is gone
    }

    [Fact]
    public void RequestUnmount_while_busy_detaches_and_serves_open_files_until_closed()
    {
        using var m = TestMount.Start();
        byte[] expected = m.Fs.SnapshotData();
        var h = File.OpenHandle(m.PathOf("data.bin"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.None);
        try
        {
            m.Session.RequestUnmount(); // EBUSY, so a lazy detach
            Assert.False(TestMount.IsMounted(m.Dir));
            Assert.False(m.Session.Completion.IsCompleted);
            byte[] buf = new byte[C];
            Assert.Equal(C, ReadFully(h, buf, 5 * C));
            Assert.True(expected.AsSpan(5 * C, C).SequenceEqual(buf));
        }
        finally
        {
            h.Dispose();
        }
        Assert.True(TestMount.Completes(m.Session.Completion), "loop did not return after the last close");
    }

    [Fact]
    public void Dispose_runs_the_file_systems_Destroy_hook()
    {
        var fs = new MemoryFileSystem();
        using (var m = TestMount.Start(fs))
        {
            Assert.True(File.Exists(m.PathOf("data.bin")));
        }
        Assert.Equal(1, fs.DestroyCount);
    }

    [Fact]
    public void Read_only_mount_refuses_writes_in_the_kernel_and_shows_fsname()
    {
        using var m = TestMount.Start(options: new FuseMountOptions { FsName = "ro-test", Subtype = "memtest", ReadOnly = true });
        byte[] before = m.Fs.SnapshotData();
        Assert.ThrowsAny<IOException>(() => File.OpenHandle(m.PathOf("data.bin"), FileMode.Open, FileAccess.ReadWrite).Dispose());
        Assert.True(before.AsSpan().SequenceEqual(m.Fs.SnapshotData()));
        string line = File.ReadLines("/proc/self/mountinfo").Single(l => l.Split(' ')[4] == m.Dir);
        string[] tail = line[(line.IndexOf(" - ", StringComparison.Ordinal) + 3)..].Split(' ');
        Assert.Equal("fuse.memtest", tail[0]);
        Assert.Equal("ro-test", tail[1]);
        Assert.StartsWith("ro", tail[2]);
    }

    [Fact]
    public void Mount_on_a_missing_directory_fails_cleanly()
    {
        Assert.Throws<DirectoryNotFoundException>(() =>
            FuseSession.Mount(new MemoryFileSystem(), "/nonexistent/qedfuse-" + Guid.NewGuid()));
    }

    [Fact]
    public void Mount_with_an_unknown_option_fails_cleanly()
    {
        string dir = Directory.CreateTempSubdirectory("qedfuse-mnt-").FullName;
        try
        {
            Assert.Throws<IOException>(() => FuseSession.Mount(new MemoryFileSystem(), dir,
                new FuseMountOptions { ExtraOptions = ["no_such_option_xyz"] }));
            Assert.False(TestMount.IsMounted(dir));
        }
        finally
        {
            TestMount.ForceUnmount(dir);
            Directory.Delete(dir);
        }
    }

    internal static int ReadFully(Microsoft.Win32.SafeHandles.SafeFileHandle h, Span<byte> buf, long offset)
    {
        int total = 0;
        while (total < buf.Length)
        {
            int n = RandomAccess.Read(h, buf[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    internal static (int, string) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        string err = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), $"{file} timed out");
        return (p.ExitCode, err + stdout.Result);
    }
}
