using System.Diagnostics;

namespace QedFuse.Fuse.Tests.Support;

/// <summary>
/// One live mount of a file system in a fresh temp directory. Dispose always leaves
/// nothing mounted: a clean unmount first, then fusermount3 -u -z as a fallback, and it
/// never waits without a timeout.
/// </summary>
public sealed class TestMount : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public string Dir { get; }
    public FuseSession Session { get; }
    public MemoryFileSystem Fs { get; }

    private TestMount(string dir, FuseSession session, MemoryFileSystem fs)
    {
        Dir = dir;
        Session = session;
        Fs = fs;
    }

    public string PathOf(string name) => System.IO.Path.Combine(Dir, name);

    public static TestMount Start(MemoryFileSystem? fs = null, FuseMountOptions? options = null)
    {
        fs ??= new MemoryFileSystem();
        string dir = Directory.CreateTempSubdirectory("qedfuse-mnt-").FullName;
        FuseSession session;
        try
        {
            session = FuseSession.Mount(fs, dir, options ?? new FuseMountOptions { FsName = "memtest", Subtype = "memtest" });
        }
        catch
        {
            Directory.Delete(dir);
            throw;
        }
        var mount = new TestMount(dir, session, fs);
        session.Start();
        return mount;
    }

    public static bool IsMounted(string dir) =>
        File.ReadLines("/proc/self/mountinfo").Any(line => line.Split(' ')[4] == dir);

    public static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout) return false;
            Thread.Sleep(20); // polling interval of a bounded wait on a condition
        }
        return true;
    }

    /// <summary>Waits (bounded) for a task; false if it did not finish in time.</summary>
    public static bool Completes(Task task)
    {
        try { return task.Wait(Timeout); }
        catch (AggregateException) { return true; }
    }

    public static void ForceUnmount(string dir)
    {
        if (!IsMounted(dir)) return;
        using var p = Process.Start(new ProcessStartInfo("fusermount3", ["-u", "-z", dir]) { RedirectStandardError = true })!;
        p.WaitForExit(10_000);
    }

    public void Dispose()
    {
        try
        {
            if (!Session.Completion.IsCompleted)
            {
                try { Session.RequestUnmount(); } catch (IOException) { }
                if (!Session.Completion.Wait(Timeout))
                {
                    ForceUnmount(Dir);
                    Session.Completion.Wait(Timeout);
                }
            }
        }
        catch (AggregateException) { }
        finally
        {
            // Only free the session once its workers are gone (otherwise they would use freed memory).
            if (Session.Completion.IsCompleted) Session.Dispose();
            ForceUnmount(Dir);
            try { Directory.Delete(Dir); } catch (IOException) { }
        }
    }
}
