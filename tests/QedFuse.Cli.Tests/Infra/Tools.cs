using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;

namespace QedFuse.Cli.Tests.Infra;

/// <summary>Where the launcher under test is: $QEDFUSE, else &lt;repo&gt;/out/qedfuse above the test assembly.</summary>
public static class Env
{
    private static readonly Lazy<string> LauncherPath = new(FindLauncher);

    public static string Qedfuse => LauncherPath.Value;

    private static string FindLauncher()
    {
        if (!File.Exists("/dev/fuse"))
        {
            throw new InvalidOperationException("/dev/fuse is missing: these tests need FUSE (load the fuse module, run as root)");
        }

        string? env = Environment.GetEnvironmentVariable("QEDFUSE");
        if (!string.IsNullOrEmpty(env))
        {
            return File.Exists(env) ? Path.GetFullPath(env) : throw new InvalidOperationException($"QEDFUSE={env}: no such file (run 'make build')");
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "out", "qedfuse");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("cannot find the qedfuse launcher: set QEDFUSE or run 'make build' (out/qedfuse)");
    }

    public static RunResult Qf(params string[] args) => Run.Exec(Qedfuse, args, TimeSpan.FromSeconds(60));
}

/// <summary>QEMU's tools: the oracle.</summary>
public static class Qemu
{
    public static RunResult Img(params string[] args) => Run.Exec("qemu-img", args, TimeSpan.FromSeconds(120)).Ok();

    public static RunResult ImgRaw(params string[] args) => Run.Exec("qemu-img", args, TimeSpan.FromSeconds(120));

    /// <summary>Runs qemu-io commands on an image (format probed unless given).</summary>
    public static RunResult Io(string image, params string[] commands) => IoFormat(image, null, commands);

    public static RunResult IoFormat(string image, string? format, params string[] commands)
    {
        var args = new List<string>();
        if (format is not null)
        {
            args.AddRange(["-f", format]);
        }

        foreach (string c in commands)
        {
            args.AddRange(["-c", c]);
        }

        args.Add(image);
        RunResult r = Run.Exec("qemu-io", args, TimeSpan.FromSeconds(120)).Ok();
        // qemu-io exits 0 even when a command fails; its messages name the failure.
        if (r.Stdout.Contains("error", StringComparison.OrdinalIgnoreCase) || r.Stderr.Length > 0)
        {
            throw new Xunit.Sdk.XunitException($"qemu-io failed: {r}");
        }

        return r;
    }

    public static void CreateQed(string path, string size, int clusterSize = 65536, int tableSize = 4, string? backing = null, string? backingFormat = null)
    {
        var args = new List<string> { "create", "-q", "-f", "qed", "-o", $"cluster_size={clusterSize},table_size={tableSize}" };
        if (backing is not null)
        {
            args.AddRange(["-b", backing, "-F", backingFormat ?? "qed"]);
        }

        args.Add(path);
        args.Add(size);
        Img([.. args]);
    }

    public static void ToRaw(string image, string raw) => Img("convert", "-U", "-O", "raw", image, raw);

    public static RunResult Check(string image) => ImgRaw("check", image);

    /// <summary>The data ranges (start, length) qemu-img map reports for the whole chain.</summary>
    public static List<(long Start, long Length)> DataRanges(string image) => DataRangesOf(Img("map", "-U", "--output=json", image).Stdout);

    /// <summary>The data ranges of a map --output=json listing (qemu-img's or ours), adjacent ones merged.</summary>
    public static List<(long Start, long Length)> DataRangesOf(string json)
    {
        var list = new List<(long, long)>();
        foreach (JsonElement e in JsonDocument.Parse(json).RootElement.EnumerateArray())
        {
            if (e.GetProperty("data").GetBoolean())
            {
                long start = e.GetProperty("start").GetInt64(), len = e.GetProperty("length").GetInt64();
                if (list.Count > 0 && list[^1].Item1 + list[^1].Item2 == start)
                {
                    list[^1] = (list[^1].Item1, list[^1].Item2 + len);
                }
                else
                {
                    list.Add((start, len));
                }
            }
        }

        return list;
    }
}

/// <summary>Facts about image files on disk.</summary>
public static class ImageFile
{
    public const int NeedCheckBit = 0x02;

    public static string Hash(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(f));
    }

    public static bool NeedCheck(string qed)
    {
        byte[] header = new byte[64];
        using (var f = File.OpenRead(qed))
        {
            f.ReadExactly(header);
        }

        Assert.Equal("QED\0"u8.ToArray(), header[..4]);
        return (header[16] & NeedCheckBit) != 0;
    }

    public static ulong ReadU64(string path, long offset)
    {
        byte[] b = new byte[8];
        using var f = File.OpenRead(path);
        f.Position = offset;
        f.ReadExactly(b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    public static uint ReadU32(string path, long offset)
    {
        byte[] b = new byte[4];
        using var f = File.OpenRead(path);
        f.Position = offset;
        f.ReadExactly(b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public static void WriteU64(string path, long offset, ulong value)
    {
        byte[] b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(b);
        f.Flush(true);
    }

    /// <summary>Deterministic pseudo-random bytes.</summary>
    public static byte[] Bytes(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static byte[] ReadRange(string path, long offset, int length)
    {
        byte[] b = new byte[length];
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        int done = 0;
        while (done < length)
        {
            int n = RandomAccess.Read(h, b.AsSpan(done), offset + done);
            if (n == 0)
            {
                throw new EndOfStreamException($"{path}: EOF at {offset + done}");
            }

            done += n;
        }

        return b;
    }
}

/// <summary>The few libc calls the tests make to see exact errno values.</summary>
public static partial class LibC
{
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;
    public const int ENXIO = 6;
    public const int EIO = 5;
    public const int EOPNOTSUPP = 95;
    public const int ENOSPC = 28;
    public const int EPERM = 1;
    public const int EROFS = 30;
    public const int EACCES = 13;
    public const int O_RDONLY = 0;
    public const int O_RDWR = 2;
    public const int O_DIRECT = 0x4000;

    public const int O_CLOEXEC = 0x80000;

    /// <summary>
    /// open(2), always close-on-exec: a daemon that a test starts must not inherit another test's
    /// descriptor of a mounted file, or that mount stays busy (and its flush counts move) after
    /// its own test has closed it.
    /// </summary>
    public static int Open(string path, int flags) => OpenNative(path, flags | O_CLOEXEC);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    public static unsafe partial nint PWrite(int fd, byte* buf, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    public static unsafe partial nint PRead(int fd, byte* buf, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int FTruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int sig);

    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>open(2) that throws with the errno.</summary>
    public static int OpenOrThrow(string path, int flags)
    {
        int fd = Open(path, flags);
        if (fd < 0)
        {
            throw new IOException($"open {path}: errno {Errno}");
        }

        return fd;
    }

    /// <summary>pwrite; returns bytes written or -errno.</summary>
    public static unsafe long PWriteErr(int fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            nint n = PWrite(fd, p, data.Length, offset);
            return n < 0 ? -Errno : n;
        }
    }

    public static unsafe long PReadErr(int fd, Span<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            nint n = PRead(fd, p, data.Length, offset);
            return n < 0 ? -Errno : n;
        }
    }
}

/// <summary>A unique scratch directory, removed on Dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("qedfuse-clitest-").FullName;
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public string Dir(string name) => Directory.CreateDirectory(this[name]).FullName;

    public void Dispose()
    {
        try
        {
            // Never recurse into anything still mounted (it would delete through the mount).
            if (!File.ReadAllText("/proc/self/mountinfo").Contains(Path, StringComparison.Ordinal))
            {
                Directory.Delete(Path, recursive: true);
            }
        }
        catch (IOException)
        {
        }
    }
}
