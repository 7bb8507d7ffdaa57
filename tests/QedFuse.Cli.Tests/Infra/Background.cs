using System.Diagnostics;
using System.Text;

namespace QedFuse.Cli.Tests.Infra;

/// <summary>
/// A process the test watches while it runs: its stdout lines as they come, signals sent to it,
/// its exit awaited with a timeout. Dispose kills it if it is still running.
/// </summary>
public sealed class Background : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly StringBuilder _stderr = new();
    private readonly string _command;

    public Background(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["LC_ALL"] = "C";
        _command = file + " " + string.Join(' ', args);
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_lines)
                {
                    _lines.Add(e.Data);
                }
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(e.Data);
                }
            }
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public void WaitForLine(Func<string, bool> match, TimeSpan timeout, string what) =>
        Wait.Until(() => Lines.Any(match) || _process.HasExited, timeout, what);

    public void Signal(int signal) => LibC.Kill(_process.Id, signal);

    public RunResult WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            throw new TimeoutException($"`{_command}` did not finish within {timeout.TotalSeconds} s");
        }

        _process.WaitForExit(); // drains the asynchronous readers
        lock (_stderr)
        {
            return new RunResult(_command, _process.ExitCode, string.Join('\n', Lines), _stderr.ToString());
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}

public static class Signals
{
    public const int SIGINT = 2;
    public const int SIGUSR1 = 10;
}
