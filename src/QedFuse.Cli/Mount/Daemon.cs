using System.Runtime.InteropServices;
using QedFuse.Block;
using QedFuse.Cli.Live;
using QedFuse.Fuse;

namespace QedFuse.Cli.Mount;

/// <summary>
/// The mount's life: open the images, mount, serve until the kernel closes the connection
/// (qedfuse unmount, fusermount3 -u, or SIGINT/SIGTERM/SIGHUP, which unmount), then flush
/// and close every image so it is left clean, and exit.
/// </summary>
internal static class Daemon
{
    /// <summary>Serves the mount; <paramref name="ready"/> runs once it is live. Returns the exit code.</summary>
    public static int Serve(MountSettings s, Action ready)
    {
        if (s.ForceShare)
        {
            Log.Warn("force_share: the images may be in use by another program; what the mount shows can be stale or inconsistent");
        }

        var images = new List<IBlockImage>();
        try
        {
            foreach (string path in s.Images)
            {
                IBlockImage image = ImageOpener.Open(path, new ImageOpenOptions
                {
                    ReadOnly = s.ReadOnly,
                    ForceShare = s.ForceShare,
                    CacheBytes = s.CacheBytes,
                    Log = Log.Warn,
                });
                images.Add(image);

                // Probing falls back to raw for anything unrecognised; showing a file that is not
                // an image as a "disk" would only hide the user's mistake.
                if (image.FormatName == "raw")
                {
                    throw new BadImageException(path, "not a disk image qedfuse can mount (no QED header found)");
                }
                Log.Info($"opened {path} ({(s.ReadOnly ? "read-only" : "read-write")})");
            }
        }
        catch
        {
            images.ForEach(i => i.Dispose());
            throw;
        }

        var fs = new ImageFileSystem(images) { RevalidateOnOpen = s.ForceShare };
        if (!s.Limits.IsEmpty)
        {
            foreach (MountedImage m in fs.Images)
            {
                m.Throttle.Configure(s.Limits);
            }
        }

        FuseSession session;
        try
        {
            session = FuseSession.Mount(fs, s.MountPoint, new FuseMountOptions
            {
                FsName = s.Images[0],
                Subtype = MountTable.Subtype,
                ReadOnly = s.ReadOnly,
                AllowOther = s.AllowOther,
                Threads = s.Threads > 0 ? s.Threads : FuseMountOptions.DefaultThreads,
            });
        }
        catch
        {
            images.ForEach(i => i.Dispose());
            throw;
        }

        int exit = 0;
        fs.Session = session;
        using (session)
        {
            MountTable.WritePid(s.MountPoint);
            using var signals = new SignalUnmount(session);
            using (var flusher = new BackgroundFlusher(images, s.FlushInterval))
            using (ControlServer control = ControlServer.Start(MountTable.SocketFile(Environment.ProcessId), new ControlCommands(fs, s)))
            {
                session.Start();
                flusher.Start();
                Log.Notice($"mounted {string.Join(", ", s.Images)} at {s.MountPoint} ({(s.ReadOnly ? "read-only" : "read-write")})");
                ready();
                try
                {
                    session.Completion.GetAwaiter().GetResult();
                }
                catch (IOException e)
                {
                    Log.Error($"{s.MountPoint}: FUSE connection failed: {e.Message}");
                    exit = 1;
                }

                // Requests still waiting for an I/O limit are answered before the images close.
                foreach (MountedImage m in fs.Images)
                {
                    m.Throttle.Dispose();
                }

                session.WaitForDeferred(TimeSpan.FromSeconds(30));
            }

            exit = CloseAll(images, s.MountPoint) ? exit : 1;
        }

        File.Delete(MountTable.PidFile(s.MountPoint));
        Log.Notice($"unmounted {s.MountPoint}");
        return exit;
    }

    /// <summary>Flushes and closes every image (need-check cleared); records any failure for qedfuse unmount.</summary>
    private static bool CloseAll(List<IBlockImage> images, string mountPoint)
    {
        var failures = new List<string>();
        foreach (IBlockImage image in images)
        {
            try
            {
                image.Dispose();
                Log.Info($"closed {image.Path} cleanly");
            }
            catch (Exception e)
            {
                failures.Add($"{image.Path}: not closed cleanly: {e.Message}");
                Log.Error(failures[^1]);
            }
        }

        if (failures.Count > 0)
        {
            File.WriteAllText(MountTable.ErrorFile(mountPoint), string.Join("\n", failures) + "\n");
        }

        return failures.Count == 0;
    }

    /// <summary>SIGINT, SIGTERM and SIGHUP unmount (cleanly) instead of killing the process.</summary>
    private sealed class SignalUnmount : IDisposable
    {
        private readonly PosixSignalRegistration[] _registrations;

        public SignalUnmount(FuseSession session)
        {
            void Handler(PosixSignalContext ctx)
            {
                ctx.Cancel = true;
                Log.Info($"{ctx.Signal}: unmounting {session.MountPoint}");
                try
                {
                    session.RequestUnmount();
                }
                catch (IOException e)
                {
                    Log.Error($"unmount on {ctx.Signal} failed: {e.Message}");
                }
            }

            _registrations =
            [
                PosixSignalRegistration.Create(PosixSignal.SIGINT, Handler),
                PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handler),
                PosixSignalRegistration.Create(PosixSignal.SIGHUP, Handler),
            ];
        }

        public void Dispose()
        {
            foreach (var r in _registrations)
            {
                r.Dispose();
            }
        }
    }
}
