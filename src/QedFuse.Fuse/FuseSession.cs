using System.Diagnostics;
using System.Runtime.InteropServices;
using QedFuse.Fuse.Native;

namespace QedFuse.Fuse;

/// <summary>
/// One mounted FUSE file system served by a pool of worker threads.
///
/// Life cycle:
/// <code>
/// using var session = FuseSession.Mount(fs, "/mnt/x", options); // returns once mounted
/// // ... report readiness here ...
/// using var reg = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
///     { ctx.Cancel = true; session.RequestUnmount(); });            // same for SIGINT/SIGHUP
/// session.Run();      // serves until the kernel closes the connection (after unmount)
/// // Dispose: fuse_session_unmount + destroy (IFuseFileSystem.Destroy runs here)
/// </code>
/// The loop never stops on its own initiative (fuse_session_exit would drop requests
/// already read and hang whatever sits above the mount); it ends when the kernel ends
/// the connection: after <see cref="RequestUnmount"/>, <c>umount</c>/<c>fusermount3 -u</c>
/// from outside, or a lazy detach once the last user is gone.
/// </summary>
public sealed unsafe class FuseSession : IDisposable
{
    private readonly GCHandle _self;
    private readonly byte* _mountPointUtf8;
    private FuseLowLevelOps* _ops;
    private FuseArgs* _args;
    private nint* _argStrings;
    private int _argCount;
    private nint _se;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _started;
    private int _liveWorkers;
    private int _loopError;
    private int _disposed;
    private int _deferred;

    private FuseSession(IFuseFileSystem fileSystem, string mountPoint, FuseMountOptions options)
    {
        FileSystem = fileSystem;
        MountPoint = mountPoint;
        Options = options;
        _self = GCHandle.Alloc(this, GCHandleType.Normal);
        _mountPointUtf8 = (byte*)Marshal.StringToCoTaskMemUTF8(mountPoint);
    }

    /// <summary>The file system being served.</summary>
    public IFuseFileSystem FileSystem { get; }

    /// <summary>Absolute path of the mount point.</summary>
    public string MountPoint { get; }

    /// <summary>The options the session was mounted with.</summary>
    public FuseMountOptions Options { get; }

    /// <summary>What was negotiated at FUSE_INIT (default until the first request is served).</summary>
    public FuseConnectionInfo Connection { get; private set; }

    /// <summary>
    /// Completes when every worker has returned, i.e. the kernel closed the connection.
    /// Faults with an <see cref="IOException"/> if reading /dev/fuse failed otherwise.
    /// </summary>
    public Task Completion => _completion.Task;

    /// <summary>
    /// Creates a libfuse session and mounts it. Returns only once the mount exists (the
    /// caller may report readiness); requests to it wait until <see cref="Start"/> or
    /// <see cref="Run"/>. Throws <see cref="IOException"/> when mounting fails, leaving
    /// nothing mounted.
    /// </summary>
    public static FuseSession Mount(IFuseFileSystem fileSystem, string mountPoint, FuseMountOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(fileSystem);
        options ??= new FuseMountOptions();
        string full = Path.GetFullPath(mountPoint);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"mount point {full} is not a directory");
        var session = new FuseSession(fileSystem, full, options);
        try
        {
            session.CreateAndMount();
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private void CreateAndMount()
    {
        string[] argv = [Options.ProgramName, "-o", Options.BuildOptionString()];
        if (argv[2].Length == 0) argv = [argv[0]];
        _argCount = argv.Length;
        _argStrings = (nint*)NativeMemory.AllocZeroed((nuint)(argv.Length + 1), (nuint)sizeof(nint));
        for (int i = 0; i < argv.Length; i++) _argStrings[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
        _args = (FuseArgs*)NativeMemory.AllocZeroed((nuint)sizeof(FuseArgs));
        _args->Argc = argv.Length;
        _args->Argv = (byte**)_argStrings;

        _ops = (FuseLowLevelOps*)NativeMemory.AllocZeroed((nuint)sizeof(FuseLowLevelOps));
        *_ops = FuseOperations.Create();

        _se = LibFuse.fuse_session_new(_args, _ops, (nuint)sizeof(FuseLowLevelOps), GCHandle.ToIntPtr(_self));
        if (_se == 0)
            throw new IOException($"fuse_session_new failed (options '{Options.BuildOptionString()}'; see libfuse's message on stderr)");
        if (LibFuse.fuse_session_mount(_se, _mountPointUtf8) != 0)
            throw new IOException($"mounting FUSE at {MountPoint} failed (see libfuse's message on stderr)");
    }

    /// <summary>Starts the worker threads and returns; see <see cref="Completion"/>.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("session already started");
        int n = Math.Max(1, Options.Threads);
        _liveWorkers = n;
        for (int i = 0; i < n; i++)
        {
            // Background threads: a process that decides to exit is not held up by a
            // worker blocked in read(/dev/fuse); auto_unmount then cleans the mount up.
            var thread = new Thread(Worker) { IsBackground = true, Name = $"fuse-worker-{i}" };
            thread.Start();
        }
    }

    /// <summary>Starts the workers and blocks until the kernel closes the connection.</summary>
    public void Run()
    {
        Start();
        Completion.GetAwaiter().GetResult();
    }

    private void Worker()
    {
        FuseBuf* buf = (FuseBuf*)NativeMemory.AllocZeroed((nuint)sizeof(FuseBuf));
        try
        {
            while (LibFuse.fuse_session_exited(_se) == 0)
            {
                // receive_buf mallocs buf->Mem once (session buffer size) and then reuses it.
                int res = LibFuse.fuse_session_receive_buf(_se, buf);
                if (res == -Errno.EINTR) continue;
                if (res <= 0)
                {
                    // 0: the connection is gone (ENODEV after unmount); libfuse has marked
                    // the session exited. ECONNABORTED: aborted via /sys/fs/fuse/connections.
                    if (res < 0 && res != -Errno.ECONNABORTED && res != -Errno.ENODEV)
                        Interlocked.CompareExchange(ref _loopError, -res, 0);
                    break;
                }
                LibFuse.fuse_session_process_buf(_se, buf);
            }
        }
        catch (Exception e)
        {
            ReportCallbackFailure("worker", e);
            Interlocked.CompareExchange(ref _loopError, Errno.EIO, 0);
        }
        finally
        {
            NativeMemory.Free(buf->Mem); // malloc'd by libfuse; NativeMemory.Free is free(3)
            NativeMemory.Free(buf);
            FuseOperations.FreeThreadBuffer();
            if (Interlocked.Decrement(ref _liveWorkers) == 0)
            {
                if (_loopError == 0) _completion.TrySetResult();
                else _completion.TrySetException(new IOException($"reading /dev/fuse failed: errno {_loopError}", _loopError));
            }
        }
    }

    /// <summary>
    /// Tells the kernel to forget what it caches of <paramref name="ino"/>: its attributes
    /// (size) always, and the page cache from <paramref name="offset"/> for
    /// <paramref name="length"/> bytes (0 = to the end; a negative offset keeps the pages).
    /// Returns 0 or -errno; -ENOENT (the kernel does not know the inode) means nothing to do.
    /// Must not be called from a setattr or readdir of the same inode, nor from a lookup of its parent.
    /// </summary>
    public int InvalidateCache(ulong ino, long offset, long length)
    {
        if (_se == 0 || _disposed != 0 || _completion.Task.IsCompleted) return -Errno.ENODEV;
        return LibFuse.fuse_lowlevel_notify_inval_inode(_se, ino, offset, length);
    }

    /// <summary>Waits until every <see cref="FuseDeferredRequest"/> taken so far has been answered, or the timeout passes.</summary>
    public bool WaitForDeferred(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (Volatile.Read(ref _deferred) > 0)
        {
            if (sw.Elapsed > timeout) return false;
            Thread.Sleep(10);
        }
        return true;
    }

    internal void DeferredTaken() => Interlocked.Increment(ref _deferred);

    internal void DeferredDone() => Interlocked.Decrement(ref _deferred);

    /// <summary>
    /// Asks the kernel to unmount; the workers return once it closes the connection. Safe
    /// from any thread (e.g. a PosixSignalRegistration handler) and more than once. As
    /// root: umount2(mountpoint), and if busy a lazy detach (MNT_DETACH) so the loop keeps
    /// serving the remaining users until they are done. Otherwise: fusermount3 -u, then -u -z.
    /// </summary>
    public void RequestUnmount()
    {
        // Once the connection is gone the path may hold something else: do not touch it.
        if (_completion.Task.IsCompleted || _se == 0 || _disposed != 0) return;
        if (LibC.geteuid() == 0)
        {
            if (LibC.umount2(_mountPointUtf8, 0) == 0) return;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EBUSY)
            {
                if (LibC.umount2(_mountPointUtf8, FuseConstants.MntDetach) == 0) return;
                errno = Marshal.GetLastPInvokeError();
            }
            // EINVAL: not a mount point any more, i.e. already unmounted.
            if (errno == Errno.EINVAL) return;
            throw new IOException($"umount2({MountPoint}) failed: errno {errno}", errno);
        }
        if (RunFusermount("-u") != 0 && RunFusermount("-u", "-z") != 0)
            throw new IOException($"fusermount3 -u {MountPoint} failed");
    }

    private int RunFusermount(params string[] flags) => Fusermount.Run([.. flags, MountPoint], out _);

    /// <summary>
    /// Ends the session: if workers still run, requests an unmount and waits for them;
    /// then lets libfuse unmount (if still mounted) and free the session, which calls
    /// <see cref="IFuseFileSystem.Destroy"/>.
    /// </summary>
    public void Dispose()
    {
        if (_started != 0 && !_completion.Task.IsCompleted)
        {
            RequestUnmount();
            try { _completion.Task.Wait(); } catch (AggregateException) { }
        }
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // A deferred request replies through the session: whoever holds one has been told to
        // finish it (the connection is gone, so replies fail fast); do not free the session under it.
        WaitForDeferred(TimeSpan.FromSeconds(30));
        if (_se != 0)
        {
            LibFuse.fuse_session_unmount(_se);
            LibFuse.fuse_session_destroy(_se);
            _se = 0;
        }
        if (_args != null)
        {
            // fuse_session_new may have replaced argv with its own copy; free that, then ours.
            LibFuse.fuse_opt_free_args(_args);
            NativeMemory.Free(_args);
            _args = null;
        }
        if (_argStrings != null)
        {
            for (int i = 0; i < _argCount; i++) Marshal.FreeCoTaskMem(_argStrings[i]);
            NativeMemory.Free(_argStrings);
            _argStrings = null;
        }
        NativeMemory.Free(_ops);
        _ops = null;
        Marshal.FreeCoTaskMem((nint)_mountPointUtf8);
        _self.Free();
    }

    internal static FuseSession FromUserData(nint userdata) =>
        (FuseSession)GCHandle.FromIntPtr(userdata).Target!;

    /// <summary>Called from FUSE_INIT: asks for our capabilities and request sizes.</summary>
    internal void Negotiate(FuseConnInfo* conn)
    {
        uint want = conn->Want | FuseConstants.CapAsyncRead | FuseConstants.CapAsyncDio | FuseConstants.CapParallelDirops;
        if (Options.WritebackCache) want |= FuseConstants.CapWritebackCache;
        else want &= ~FuseConstants.CapWritebackCache;
        want &= ~FuseConstants.CapSpliceRead; // splice paths were much slower here
        conn->Want = want & conn->Capable;
        if (Options.MaxWrite != 0) conn->MaxWrite = Options.MaxWrite;
        if (Options.MaxReadahead != 0) conn->MaxReadahead = Options.MaxReadahead;
        Connection = new FuseConnectionInfo(conn->ProtoMajor, conn->ProtoMinor, conn->Capable, conn->Want,
            conn->MaxWrite, conn->MaxRead, conn->MaxReadahead, conn->MaxBackground);
        FileSystem.Init(Connection);
    }

    /// <summary>Last resort for failures that cannot be answered with an errno.</summary>
    internal static void ReportCallbackFailure(string where, Exception e)
    {
        try { Console.Error.WriteLine($"qedfuse: unexpected failure in FUSE {where}: {e}"); } catch { }
    }
}
