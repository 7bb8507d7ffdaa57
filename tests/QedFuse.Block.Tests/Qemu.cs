using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace QedFuse.Block.Tests;

/// <summary>The result of one qemu-img / qemu-io run.</summary>
public sealed record ToolResult(string Tool, IReadOnlyList<string> Args, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() =>
        $"{Tool} {string.Join(' ', Args)} -> exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>Runs QEMU's own tools, the oracle of this suite, with a timeout and their output kept for failure messages.</summary>
public static class Qemu
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs a tool; never throws on a non-zero exit (use <see cref="Img"/>/<see cref="Io"/> for that).</summary>
    public static ToolResult Run(string tool, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        var list = args.ToList();
        foreach (string a in list)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        p.StandardInput.Close();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? DefaultTimeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"{tool} {string.Join(' ', list)} did not finish within {timeout ?? DefaultTimeout}");
        }

        p.WaitForExit();
        return new ToolResult(tool, list, p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>qemu-img ARGS; throws with its output unless it exits 0.</summary>
    public static string Img(params string[] args) => Ok(Run("qemu-img", args));

    /// <summary>qemu-io -f FORMAT -c CMD ... FILE; throws with its output unless every command worked.</summary>
    public static string Io(string file, string format, params string[] commands)
    {
        var args = new List<string> { "-f", format };
        foreach (string c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }

        args.Add(file);
        ToolResult r = Run("qemu-io", args);
        // qemu-io exits 0 even when a command fails; the failure shows on stderr or stdout.
        if (r.ExitCode != 0 || r.Stderr.Length > 0 || r.Stdout.Contains("error", StringComparison.OrdinalIgnoreCase)
            || r.Stdout.Contains("failed", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException("qemu-io failed: " + r);
        }

        return r.Stdout;
    }

    public static string Ok(ToolResult r) =>
        r.ExitCode == 0 ? r.Stdout : throw new InvalidOperationException("tool failed: " + r);

    /// <summary>qemu-img check --output=json; returns the exit code and the parsed report.</summary>
    public static (int Exit, JsonElement Report, ToolResult Raw) Check(string image, string format = "qed")
    {
        ToolResult r = Run("qemu-img", ["check", "--output=json", "-f", format, image]);
        if (r.ExitCode is not (0 or 2 or 3) || r.Stdout.Length == 0)
        {
            throw new InvalidOperationException("qemu-img check failed: " + r);
        }

        return (r.ExitCode, JsonDocument.Parse(r.Stdout).RootElement.Clone(), r);
    }

    public static long GetLong(this JsonElement e, string name) =>
        e.TryGetProperty(name, out JsonElement v) ? v.GetInt64() : 0;

    public static string? GetStringOrNull(this JsonElement e, string name) =>
        e.TryGetProperty(name, out JsonElement v) ? v.GetString() : null;

    /// <summary>qemu-img check must find the image clean (exit 0: no corruption, no leak).</summary>
    public static void AssertClean(string image)
    {
        var (exit, report, raw) = Check(image);
        Assert.True(exit == 0 && report.GetLong("corruptions") == 0 && report.GetLong("leaks") == 0,
            "qemu-img check is not clean: " + raw);
    }

    /// <summary>qemu-img compare IMAGE REF (raw) must say identical.</summary>
    public static void AssertSameAsRaw(string image, string rawReference, string format = "qed")
    {
        ToolResult r = Run("qemu-img", ["compare", "-f", format, "-F", "raw", image, rawReference]);
        Assert.True(r.ExitCode == 0, "qemu-img compare differs: " + r);
    }

    public static JsonElement Info(string image, params string[] extra)
    {
        string json = Img(["info", "--output=json", .. extra, image]);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    /// <summary>The virtual disk as qemu-img convert -O raw sees it, as a (sparse) file in <paramref name="dir"/>.</summary>
    public static string ConvertToRaw(string image, string dir, string format = "qed")
    {
        string raw = Path.Combine(dir, Path.GetFileName(image) + $".{Guid.NewGuid():N}.converted.raw");
        Img("convert", "-f", format, "-O", "raw", image, raw);
        return raw;
    }
}

/// <summary>A temporary directory removed (with everything in it) on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("qedfuse-block-tests-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp dir must not fail a test.
        }
    }
}

public static class Files
{
    public static string Hash(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s)) + "/" + s.Length;
    }

    public static byte[] ReadRange(string path, long offset, int length)
    {
        byte[] b = new byte[length];
        using var h = File.OpenHandle(path);
        int done = 0;
        while (done < length)
        {
            int n = RandomAccess.Read(h, b.AsSpan(done), offset + done);
            if (n == 0)
            {
                break;
            }

            done += n;
        }

        return b;
    }

    public static void WriteAt(string path, long offset, ReadOnlySpan<byte> data)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.Write(h, data, offset);
    }

    public static void WriteU64(string path, long offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        WriteAt(path, offset, b);
    }

    public static void WriteU32(string path, long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        WriteAt(path, offset, b);
    }

    public static ulong ReadU64(string path, long offset) =>
        System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(ReadRange(path, offset, 8));

    /// <summary>Header byte 16: the feature bits; 0x02 is need-check.</summary>
    public static bool NeedCheckOnDisk(string path) => (ReadU64(path, 16) & 0x02) != 0;

    /// <summary>First differing index of two spans, or -1, for readable assertion messages.</summary>
    public static long FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            if (a[i] != b[i])
            {
                return i;
            }
        }

        return a.Length == b.Length ? -1 : n;
    }

    public static void AssertBytesEqual(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, long baseOffset, string what)
    {
        if (expected.SequenceEqual(actual))
        {
            return;
        }

        long i = FirstDifference(expected, actual);
        string e = i < expected.Length ? $"0x{expected[(int)i]:x2}" : "end";
        string a = i < actual.Length ? $"0x{actual[(int)i]:x2}" : "end";
        Assert.Fail($"{what}: first difference at virtual offset {baseOffset + i}: expected {e}, got {a}");
    }

    public static string Text(params string[] lines) => string.Join('\n', lines);

    public static string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);
}
