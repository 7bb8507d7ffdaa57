using Microsoft.Win32.SafeHandles;
using QedFuse.Block.Native;

namespace QedFuse.Block;

/// <summary>
/// The host file under an image layer: positional I/O on one handle, durability, space
/// control and QEMU-compatible locks. Reads past the end of the file return zeros, as a
/// backing file smaller than its overlay must.
/// </summary>
/// <remarks>
/// A failed fdatasync cannot be retried: Linux reports a writeback error once and then marks
/// the pages clean, so the next fdatasync succeeds although the data never reached the disk.
/// After one, the file is <see cref="Failed"/>: every later write, resize or sync fails with
/// EIO (reads continue), so nothing can ever claim durability or mark the image clean again.
/// </remarks>
internal sealed class HostFile : IDisposable
{
    private readonly SafeFileHandle _handle;

    private readonly IHostFileHook? _hook;

    private readonly Action<string>? _log;

    private string? _failure;

    private HostFile(string path, SafeFileHandle handle, bool writable, IHostFileHook? hook, Action<string>? log)
    {
        Path = path;
        _handle = handle;
        Writable = writable;
        _hook = hook;
        _log = log;
    }

    public string Path { get; }

    public bool Writable { get; }

    public SafeFileHandle Handle => _handle;

    public long Length => RandomAccess.GetLength(_handle);

    /// <summary>Whether a failed sync (or a header of unknown state) has made every later change impossible.</summary>
    public bool Failed => Volatile.Read(ref _failure) is not null;

    /// <summary>Opens an image file as <paramref name="options"/> ask: read-write (writer locks) or read-only (reader locks, or shared ones with force-share).</summary>
    public static HostFile Open(string path, ImageOpenOptions options) =>
        Open(path, !options.ReadOnly,
            options.ReadOnly ? (options.ForceShare ? ImageLock.Role.SharedReader : ImageLock.Role.Reader) : ImageLock.Role.Writer,
            options.HostFileHook, options.Log);

    /// <summary>Opens the file and takes QEMU's locks for <paramref name="role"/>; <paramref name="log"/> hears of a failure once.</summary>
    public static HostFile Open(string path, bool writable, ImageLock.Role role, IHostFileHook? hook = null, Action<string>? log = null)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read,
                FileShare.ReadWrite | FileShare.Delete);
        }
        catch (UnauthorizedAccessException)
        {
            throw new BadImageException(path, writable ? "permission denied (open it read-only with -o ro?)" : "permission denied");
        }
        catch (IOException e) when (writable && e.HResult == LibC.EROFS)
        {
            throw new ReadOnlyFileSystemException(path);
        }
        catch (IOException e) when (e is not BadImageException)
        {
            throw new BadImageException(path, e.Message);
        }

        try
        {
            ImageLock.Acquire(handle, path, role);
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        return new HostFile(path, handle, writable, hook, log);
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes; the part past end of file reads as zeros.</summary>
    public void ReadExactly(long offset, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(_handle, buffer[done..], offset + done);
            if (n == 0)
            {
                buffer[done..].Clear();
                return;
            }

            done += n;
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> data, IoEvent e)
    {
        ThrowIfFailed();
        _hook?.Before(this, e, offset, data.Length);
        try
        {
            RandomAccess.Write(_handle, data, offset);
        }
        catch (ArgumentOutOfRangeException) when (offset >= 0)
        {
            throw FileTooLarge();
        }

        _hook?.After(this, e, offset, data.Length);
    }

    public void SetLength(long length)
    {
        ThrowIfFailed();
        _hook?.Before(this, IoEvent.Grow, length, 0);
        try
        {
            RandomAccess.SetLength(_handle, length);
        }
        catch (ArgumentOutOfRangeException) when (length >= 0)
        {
            throw FileTooLarge();
        }

        _hook?.After(this, IoEvent.Grow, length, 0);
    }

    /// <summary>
    /// Marks the file failed (see the remarks); the first call logs <paramref name="reason"/>.
    /// Later writes, resizes and syncs throw <see cref="ImageFailedException"/>.
    /// </summary>
    public void Fail(string reason)
    {
        if (Interlocked.CompareExchange(ref _failure, reason, null) is null)
        {
            _log?.Invoke($"{Path}: {reason}; the image stays marked as needing a check, and every later write or fsync fails with EIO (reads continue); unmount, then run 'qedfuse check -r all'");
        }
    }

    /// <summary>Throws <see cref="ImageFailedException"/> once the file has failed.</summary>
    public void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } reason)
        {
            throw new ImageFailedException(Path, reason);
        }
    }

    /// <summary>Lets a hook fail an operation that is not I/O on this file (a copy-on-write read of the backing chain).</summary>
    public void Announce(IoEvent e) => _hook?.Before(this, e, 0, 0);

    /// <summary>Data durable on return (fdatasync).</summary>
    public void Sync()
    {
        ThrowIfFailed();
        try
        {
            _hook?.Before(this, IoEvent.Flush, 0, 0);
            int errno = LibC.Fdatasync(_handle);
            if (errno != 0)
            {
                throw new IOException($"{Path}: fdatasync failed (errno {errno})", errno);
            }
        }
        catch (IOException e) when (e is not ImageFailedException)
        {
            string reason = $"fdatasync failed ({e.Message})";
            Fail(reason);
            throw new ImageFailedException(Path, reason, e.HResult is > 0 and < 4096 ? e.HResult : LibC.EIO);
        }

        _hook?.After(this, IoEvent.Flush, 0, 0);
    }

    /// <summary>Makes the host range read as zeros, releasing the space when it can; writes zeros where the file system cannot.</summary>
    public void ZeroRange(long offset, long length, bool release)
    {
        ThrowIfFailed();
        _hook?.Before(this, IoEvent.DataWrite, offset, length);
        int mode = (release ? Linux.FallocPunchHole : Linux.FallocZeroRange) | Linux.FallocKeepSize;
        if (LibC.Fallocate(_handle, mode, offset, length) != 0)
        {
            byte[] zeros = new byte[(int)Math.Min(length, 1 << 20)];
            for (long done = 0; done < length; done += zeros.Length)
            {
                RandomAccess.Write(_handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, length - done)), offset + done);
            }
        }

        _hook?.After(this, IoEvent.DataWrite, offset, length);
    }

    /// <summary>Next data at or after <paramref name="offset"/> (SEEK_DATA), or -errno (ENXIO past the last data).</summary>
    public long NextData(long offset) => LibC.Seek(_handle, offset, Linux.SeekData);

    /// <summary>Next hole at or after <paramref name="offset"/> (SEEK_HOLE), or -errno.</summary>
    public long NextHole(long offset) => LibC.Seek(_handle, offset, Linux.SeekHole);

    public long AllocatedBytes => Math.Max(0, LibC.AllocatedBytes(_handle));

    /// <summary>
    /// .NET reports EFBIG (the host file system's or RLIMIT_FSIZE's file size limit) as
    /// ArgumentOutOfRangeException; the caller must see EFBIG, not EINVAL.
    /// </summary>
    private IOException FileTooLarge() => new($"{Path}: file too large for the host file system (EFBIG)", LibC.EFBIG);

    public void Dispose()
    {
        ImageLock.Release(_handle);
        _handle.Dispose();
    }
}
