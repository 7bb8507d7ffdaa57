using System.Diagnostics;
using QedFuse.Fuse;

namespace QedFuse.Cli.Mount;

/// <summary>
/// Backgrounds a mount without fork (unsafe in .NET): re-executes qedfuse (by its own absolute
/// path, so no PATH is needed) with the hidden --daemon-child flag and pipes for stdio; the child
/// starts a session of its own (setsid(2), <see cref="DaemonSession"/>). The child's stderr
/// carries its messages until it prints "ready" on stdout (and, to mark the end of those
/// messages, on stderr); then the launcher exits 0, once it has passed them all on. If
/// the child exits first, its messages explain why and the launcher exits non-zero, and
/// nothing is left mounted. The caller's own stdout/stderr are never handed to the daemon.
/// </summary>
internal static class DaemonLauncher
{
    public const string ChildOption = "daemon-child";
    public const string ChildFlag = "--" + ChildOption;
    public const string ReadyLine = "ready";

    public static int Launch(IEnumerable<string> childArgs)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath ?? throw new IOException("cannot find the qedfuse executable to start the daemon"))
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in childArgs)
        {
            psi.ArgumentList.Add(a);
        }

        using Process daemon = Process.Start(psi) ?? throw new IOException("cannot start the qedfuse daemon");
        daemon.StandardInput.Close();
        var stderrDone = new TaskCompletionSource();
        var stderrReady = new TaskCompletionSource();
        daemon.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                stderrDone.TrySetResult();
            }
            else if (e.Data == ReadyLine)
            {
                stderrReady.TrySetResult();
            }
            else
            {
                Console.Error.WriteLine(e.Data);
            }
        };
        daemon.BeginErrorReadLine();

        while (daemon.StandardOutput.ReadLine() is { } line)
        {
            if (line == ReadyLine)
            {
                // Stdout and stderr are read apart: what the daemon said before it was ready (a
                // repair, a warning) reaches the caller before the command returns.
                Task.WaitAny([stderrReady.Task, stderrDone.Task], TimeSpan.FromSeconds(10));
                return 0;
            }
        }

        // The daemon exited without reporting readiness: let its last words arrive.
        stderrDone.Task.Wait(TimeSpan.FromSeconds(5));
        return Program.ExitFailure;
    }

    /// <summary>In the child, first: leave the caller's session and terminal.</summary>
    public static void DetachChild() => DaemonSession.Detach();

    /// <summary>In the child: log to syslog from now on, then tell the launcher the mount is live.</summary>
    public static void ReportReady()
    {
        Log.SwitchToSyslog();
        Console.Error.WriteLine(ReadyLine);
        Console.Error.Flush();
        Console.Out.WriteLine(ReadyLine);
        Console.Out.Flush();
    }
}
