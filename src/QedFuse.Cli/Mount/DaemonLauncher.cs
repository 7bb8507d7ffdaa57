using System.Diagnostics;

namespace QedFuse.Cli.Mount;

/// <summary>
/// Backgrounds a mount without fork (unsafe in .NET): re-executes qedfuse in a new session
/// (setsid) with the hidden --daemon-child flag and pipes for stdio. The child's stderr
/// carries its messages until it prints "ready" on stdout; then the launcher exits 0. If
/// the child exits first, its messages explain why and the launcher exits non-zero, and
/// nothing is left mounted. The caller's own stdout/stderr are never handed to the daemon.
/// </summary>
internal static class DaemonLauncher
{
    public const string ChildOption = "daemon-child";
    public const string ChildFlag = "--" + ChildOption;
    public const string ReadyLine = "ready";

    /// <summary>
    /// The child's last stderr line before readiness: the launcher relays stderr on another
    /// thread, and waits for this line so that no warning printed before "ready" is lost.
    /// </summary>
    private const string StderrDoneLine = "\u0001qedfuse: stderr done";

    public static int Launch(IEnumerable<string> childArgs)
    {
        var psi = new ProcessStartInfo("setsid")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("-f");
        psi.ArgumentList.Add(Environment.ProcessPath ?? throw new IOException("cannot find the qedfuse executable to start the daemon"));
        foreach (string a in childArgs)
        {
            psi.ArgumentList.Add(a);
        }

        using Process setsid = Process.Start(psi) ?? throw new IOException("cannot start the qedfuse daemon (setsid)");
        setsid.StandardInput.Close();
        var stderrDone = new TaskCompletionSource();
        var stderrRelayed = new TaskCompletionSource();
        setsid.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                stderrDone.TrySetResult();
                stderrRelayed.TrySetResult();
            }
            else if (e.Data == StderrDoneLine)
            {
                stderrRelayed.TrySetResult();
            }
            else
            {
                Console.Error.WriteLine(e.Data);
            }
        };
        setsid.BeginErrorReadLine();

        while (setsid.StandardOutput.ReadLine() is { } line)
        {
            if (line == ReadyLine)
            {
                stderrRelayed.Task.Wait(TimeSpan.FromSeconds(5));
                return 0;
            }
        }

        // The daemon exited without reporting readiness: let its last words arrive.
        stderrDone.Task.Wait(TimeSpan.FromSeconds(5));
        return Program.ExitFailure;
    }

    /// <summary>In the child: tell the launcher the mount is live, then log to syslog.</summary>
    public static void ReportReady()
    {
        Console.Error.WriteLine(StderrDoneLine);
        Console.Error.Flush();
        Console.Out.WriteLine(ReadyLine);
        Console.Out.Flush();
        Log.SwitchToSyslog();
    }
}
