using System.Diagnostics;

namespace QedFuse.Reliability.Tests.Support;

/// <summary>
/// A long-running QEMU process that keeps an image open (qemu-io with its stdin held open, or
/// qemu-storage-daemon). Dispose ends exactly this process (by its id) and waits for it.
/// </summary>
public sealed class QemuHolder : IDisposable
{
    private readonly Process _process;

    private QemuHolder(Process process) => _process = process;

    public int Pid => _process.Id;

    public string Output { get; private set; } = "";

    public static QemuHolder Start(string file, params string[] args)
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

        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var holder = new QemuHolder(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (holder) holder.Output += e.Data + "\n"; };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (holder) holder.Output += e.Data + "\n"; };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return holder;
    }

    public bool HasExited => _process.HasExited;

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
            }

            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }
        finally
        {
            _process.Dispose();
        }
    }

    /// <summary>Whether some process holds an OFD lock on QEMU's "write" permission byte (101) of <paramref name="path"/>.</summary>
    public static bool WriteLockHeld(string path) => LockedBytes(path).Any(r => r.Start <= 101 && r.End >= 101);

    /// <summary>The byte ranges locked on <paramref name="path"/>'s inode, from /proc/locks.</summary>
    public static List<(long Start, long End)> LockedBytes(string path)
    {
        var st = Proc.Run("stat", "-c", "%i", path);
        string inode = st.Stdout.Trim();
        var list = new List<(long, long)>();
        foreach (string line in File.ReadLines("/proc/locks"))
        {
            // "1: OFDLCK ADVISORY  READ -1 fe:00:11657819 100 101"
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 8 && f[5].EndsWith(":" + inode, StringComparison.Ordinal)
                && long.TryParse(f[6], out long s) && long.TryParse(f[7], out long e))
            {
                list.Add((s, e));
            }
        }

        return list;
    }
}
