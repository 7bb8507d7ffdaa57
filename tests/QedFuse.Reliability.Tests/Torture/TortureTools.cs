using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QedFuse.Reliability.Tests.Torture;

/// <summary>Processes, the launcher, and the two libc calls a raw file needs for fsync and punch-hole.</summary>
internal static class TortureTools
{
    public static string Launcher()
    {
        if (Environment.GetEnvironmentVariable("QEDFUSE") is { Length: > 0 } env)
        {
            return env;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "out", "qedfuse");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("out/qedfuse not found: run 'make build' or set QEDFUSE");
    }

    public static (int Exit, string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            p.Kill(true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in 120 s");
        }

        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public static string MustRun(string file, params string[] args)
    {
        var (exit, stdout, stderr) = Run(file, args);
        return exit == 0 ? stdout : throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {exit}: {stderr}{stdout}");
    }

    public static bool IsMounted(string mountPoint) =>
        File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ') is { Length: > 4 } f && f[4] == mountPoint);

    /// <summary>Waits for <paramref name="condition"/>, polling, up to <paramref name="timeout"/>.</summary>
    public static bool WaitFor(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout)
            {
                return false;
            }

            Thread.Sleep(10);
        }

        return true;
    }

    public static void Fsync(SafeFileHandle handle)
    {
        if (fsync(handle) != 0)
        {
            throw new IOException($"fsync failed: errno {Marshal.GetLastPInvokeError()}", Marshal.GetLastPInvokeError());
        }
    }

    public static void PunchHole(SafeFileHandle handle, long offset, long length)
    {
        const int punchHoleKeepSize = 0x03;
        if (fallocate(handle, punchHoleKeepSize, offset, length) != 0)
        {
            throw new IOException($"fallocate failed: errno {Marshal.GetLastPInvokeError()}", Marshal.GetLastPInvokeError());
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(SafeFileHandle fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int fallocate(SafeFileHandle fd, int mode, long offset, long len);
}
