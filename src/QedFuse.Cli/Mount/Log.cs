using System.Net.Sockets;
using System.Text;

namespace QedFuse.Cli.Mount;

/// <summary>
/// Mount-level messages. Where they go:
/// <list type="bullet">
/// <item>stderr while someone reads it (foreground, or the launcher's pipe until the daemon is
/// ready): errors and warnings always, the rest with -v;</item>
/// <item>once the daemon is detached, syslog (/dev/log), or the kernel log (dmesg) where no
/// syslog daemon listens, as daemons do early at boot: errors, warnings and notices (the
/// mount's start and end) always, the rest with -v;</item>
/// <item>the --log-file, if given, from the start to the end in either mode: the same as the
/// detached daemon's, with a timestamp, so a machine with no syslog keeps a record.</item>
/// </list>
/// </summary>
internal static class Log
{
    private const int SeverityError = 3, SeverityWarning = 4, SeverityNotice = 5, SeverityInfo = 6;

    private static readonly object Gate = new();
    private static Socket? _syslog;
    private static FileStream? _kmsg;
    private static FileStream? _file;
    private static bool _toStderr = true;

    public static bool Verbose { get; set; }

    /// <summary>Appends every message from now on to <paramref name="path"/> as well (created if missing).</summary>
    public static void OpenFile(string path)
    {
        try
        {
            _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--log-file {path}: cannot write it: {e.Message}");
        }
    }

    /// <summary>From now on write to syslog (or the kernel log) instead of stderr.</summary>
    public static void SwitchToSyslog()
    {
        lock (Gate)
        {
            _toStderr = false;
            try
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                s.Connect(new UnixDomainSocketEndPoint("/dev/log"));
                _syslog = s;
            }
            catch (SocketException)
            {
                try
                {
                    _kmsg = new FileStream("/dev/kmsg", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _kmsg = null; // neither: only the --log-file (if any) keeps the messages
                }
            }
        }
    }

    /// <summary>Routine detail: only with -v.</summary>
    public static void Info(string message) => Write(SeverityInfo, message);

    /// <summary>A milestone of the mount (mounted, unmounted): always in the log, on stderr with -v.</summary>
    public static void Notice(string message) => Write(SeverityNotice, message);

    public static void Warn(string message) => Write(SeverityWarning, message);

    public static void Error(string message) => Write(SeverityError, message);

    private static void Write(int severity, string message)
    {
        bool routine = severity == SeverityInfo;
        if (routine && !Verbose)
        {
            return;
        }

        string line = Program.OneLine(message);
        lock (Gate)
        {
            if (_file is not null)
            {
                Append(_file, $"{DateTime.Now:yyyy-MM-ddTHH:mm:ss.fffzzz} qedfuse[{Environment.ProcessId}]: {Label(severity)}{line}\n");
            }

            if (_toStderr)
            {
                if (severity <= SeverityWarning || Verbose)
                {
                    try
                    {
                        Console.Error.WriteLine($"qedfuse: {line}");
                    }
                    catch (IOException)
                    {
                        // the reader of our stderr is gone
                    }
                }

                return;
            }

            const int facilityDaemon = 3 << 3;
            string record = $"<{facilityDaemon | severity}>qedfuse[{Environment.ProcessId}]: {line}";
            try
            {
                _syslog?.Send(Encoding.UTF8.GetBytes(record));
            }
            catch (SocketException)
            {
            }

            if (_kmsg is not null)
            {
                Append(_kmsg, record);
            }
        }
    }

    private static string Label(int severity) => severity switch
    {
        SeverityError => "error: ",
        SeverityWarning => "warning: ",
        _ => "",
    };

    private static void Append(FileStream stream, string text)
    {
        try
        {
            stream.Write(Encoding.UTF8.GetBytes(text));
        }
        catch (IOException)
        {
            // a full or failing log disk must not take the mount down
        }
    }
}
