using QedFuse.Fuse.Native;

namespace QedFuse.Fuse;

/// <summary>
/// The half of libfuse's fuse_daemonize that .NET can use: a daemon started as a child process
/// (fork is unsafe in .NET) leaves its parent's session, and so the terminal's job control and
/// hang-up, with setsid(2) itself rather than through a setsid program found on PATH.
/// </summary>
public static class DaemonSession
{
    /// <summary>
    /// Makes the calling process the leader of a new session with no controlling terminal. A
    /// process that already leads a process group cannot (EPERM) and stays where it is.
    /// </summary>
    public static void Detach() => LibC.setsid();
}
