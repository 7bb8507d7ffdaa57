using System.Net.Sockets;
using System.Text;

namespace QedFuse.Cli.Mount;

/// <summary>
/// Mount-level messages: to stderr while someone reads it (foreground, or the launcher's
/// pipe before readiness), to syslog once the daemon is detached. Errors always go out;
/// routine events only with -v.
/// </summary>
internal static class Log
{
    private static readonly object Gate = new();
    private static Socket? _syslog;
    private static bool _toStderr = true;

    public static bool Verbose { get; set; }

    /// <summary>From now on write to syslog (/dev/log) instead of stderr.</summary>
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
                _syslog = null; // no syslog daemon here: messages are dropped, not fatal
            }
        }
    }

    public static void Info(string message)
    {
        if (Verbose)
        {
            Write(6, message);
        }
    }

    public static void Warn(string message) => Write(4, message);

    public static void Error(string message) => Write(3, message);

    private static void Write(int severity, string message)
    {
        string line = Program.OneLine(message);
        lock (Gate)
        {
            if (_toStderr)
            {
                try
                {
                    Console.Error.WriteLine($"qedfuse: {line}");
                }
                catch (IOException)
                {
                    // the reader of our stderr is gone
                }

                return;
            }

            try
            {
                const int facilityDaemon = 3 << 3;
                _syslog?.Send(Encoding.UTF8.GetBytes($"<{facilityDaemon | severity}>qedfuse[{Environment.ProcessId}]: {line}"));
            }
            catch (SocketException)
            {
            }
        }
    }
}
