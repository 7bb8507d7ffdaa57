using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.Live;

/// <summary>The live-mount verbs as the tests drive them, and a timed I/O loop for throttling measurements.</summary>
internal static partial class LiveTools
{
    /// <summary>
    /// The stats object of file <paramref name="name"/>, asked of the daemon's control socket from
    /// this process: spawning `qedfuse stats` would fork, and the child's close of an inherited
    /// descriptor of the mounted file is a FUSE flush, which changes what is being measured.
    /// </summary>
    public static JsonElement Stats(string mountPoint, string name)
    {
        int pid = Mounts.ReadPid(mountPoint) ?? throw new Xunit.Sdk.XunitException($"no daemon for {mountPoint}");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint($"/run/qedfuse/{pid}.sock"));
        socket.Send("{\"verb\":\"stats\"}\n"u8);
        using var reader = new StreamReader(new NetworkStream(socket));
        string answer = reader.ReadLine() ?? throw new Xunit.Sdk.XunitException("no answer from the control socket");
        using var doc = JsonDocument.Parse(answer);
        Assert.True(doc.RootElement.GetProperty("ok").GetBoolean(), answer);
        return FileStats(doc.RootElement.GetProperty("result"), name);
    }

    /// <summary>The stats object of file <paramref name="name"/> in a stats result.</summary>
    public static JsonElement FileStats(JsonElement result, string name)
    {
        foreach (JsonElement f in result.GetProperty("files").EnumerateArray())
        {
            if (f.GetProperty("name").GetString() == name)
            {
                return f.GetProperty("stats").Clone();
            }
        }

        throw new Xunit.Sdk.XunitException($"no file {name} in stats: {result}");
    }

    public static long N(this JsonElement stats, string key) => stats.GetProperty(key).GetInt64();

    public static long Latency(this JsonElement stats, string kind, string which) =>
        stats.GetProperty($"{kind}_latency_ns").GetProperty(which).GetInt64();

    /// <summary>
    /// <paramref name="threads"/> threads doing <paramref name="bytes"/>-sized O_DIRECT reads (or
    /// writes) at cycling offsets of <paramref name="file"/> for <paramref name="duration"/>; returns
    /// each completion as (seconds since start, bytes, latency in seconds).
    /// </summary>
    public static List<(double At, int Bytes, double Latency)> Hammer(string file, bool write, int threads, int bytes, TimeSpan duration, long span = 32L << 20)
    {
        var done = new List<(double, int, double)>();
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            int fd = LibC.OpenOrThrow(file, (write ? LibC.O_RDWR : LibC.O_RDONLY) | LibC.O_DIRECT);
            var mine = new List<(double, int, double)>();
            unsafe
            {
                byte* buf = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 4096);
                try
                {
                    new Span<byte>(buf, bytes).Fill((byte)(t + 1));
                    long offset = t * (span / threads) / bytes * bytes;
                    while (clock.Elapsed < duration)
                    {
                        double start = clock.Elapsed.TotalSeconds;
                        nint n = write ? LibC.PWrite(fd, buf, bytes, offset) : LibC.PRead(fd, buf, bytes, offset);
                        if (n != bytes)
                        {
                            throw new IOException($"{(write ? "pwrite" : "pread")} {file} at {offset}: {n} (errno {LibC.Errno})");
                        }

                        double end = clock.Elapsed.TotalSeconds;
                        mine.Add((end, bytes, end - start));
                        offset = (offset + bytes) % span;
                    }
                }
                finally
                {
                    NativeMemory.AlignedFree(buf);
                    LibC.Close(fd);
                }
            }

            lock (done)
            {
                done.AddRange(mine);
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        return done;
    }

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);
}
