using System.Diagnostics;
using System.Text;

namespace QedFuse.Reliability.Tests.Support;

/// <summary>The outcome of a finished child process.</summary>
public sealed record ProcResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>Runs tools with a timeout; a process that overstays is killed (it is ours) and the test fails.</summary>
public static class Proc
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public static ProcResult Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        TimeSpan limit = timeout ?? DefaultTimeout;
        if (!p.WaitForExit(limit))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit(5000);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {limit.TotalSeconds} s\nstdout: {stdout}\nstderr: {stderr}");
        }

        p.WaitForExit(); // drain the async readers
        lock (stdout) lock (stderr) return new ProcResult(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static ProcResult Run(string file, params string[] args) => Run(file, args, null);

    /// <summary>Runs and asserts exit 0.</summary>
    public static ProcResult Ok(string file, params string[] args)
    {
        ProcResult r = Run(file, args, null);
        Assert.True(r.ExitCode == 0, $"{file} {string.Join(' ', args)} failed: {r}");
        return r;
    }

    /// <summary>Polls <paramref name="condition"/> until true or the timeout; false on timeout.</summary>
    public static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout)
            {
                return false;
            }

            Thread.Sleep(20); // polling interval of a bounded wait on a condition
        }

        return true;
    }

    public static bool IsAlive(int pid)
    {
        try
        {
            // A zombie still has /proc/PID; it is dead for our purposes.
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && stat.Length > close + 2 && stat[close + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
