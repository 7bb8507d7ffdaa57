using System.Diagnostics;
using System.Text;

namespace QedFuse.Cli.Tests.Infra;

/// <summary>What a finished process left: exit code and everything it printed.</summary>
public sealed record RunResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public RunResult Ok()
    {
        if (ExitCode != 0)
        {
            throw new Xunit.Sdk.XunitException($"`{Command}` exited {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
        }

        return this;
    }

    public override string ToString() => $"`{Command}` -> {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>Runs processes with a timeout; a process that outlives it is killed and the test fails.</summary>
public static class Run
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public static RunResult Exec(string file, params string[] args) => Exec(file, args, DefaultTimeout);

    public static RunResult Exec(string file, IEnumerable<string> args, TimeSpan timeout, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["LC_ALL"] = "C";
        string command = file + " " + string.Join(' ', psi.ArgumentList);
        using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {command}");
        // Read both pipes to EOF: a child that leaves a descendant holding them open shows up as a timeout.
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        var sw = Stopwatch.StartNew();
        bool exited = p.WaitForExit(timeout);
        bool drained = exited && Task.WaitAll([stdout, stderr], timeout - sw.Elapsed > TimeSpan.Zero ? timeout - sw.Elapsed : TimeSpan.Zero);
        if (!exited || !drained)
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            throw new TimeoutException(exited
                ? $"`{command}` exited ({p.ExitCode}) but its stdout/stderr stayed open for {timeout.TotalSeconds} s (a descendant holds them)"
                : $"`{command}` did not finish within {timeout.TotalSeconds} s");
        }

        return new RunResult(command, p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs a shell command line (for pipes and redirections).</summary>
    public static RunResult Sh(string script, TimeSpan? timeout = null) =>
        Exec("/bin/sh", ["-c", script], timeout ?? DefaultTimeout);
}

/// <summary>Waits on conditions with a deadline instead of sleeping blindly.</summary>
public static class Wait
{
    public static void Until(Func<bool> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds} s waiting for {what}");
            }

            Thread.Sleep(20);
        }
    }
}

public static class Text
{
    public static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public static string Utf8(byte[] b) => Encoding.UTF8.GetString(b);
}
