using Microsoft.Win32.SafeHandles;
using QedFuse.Block.Native;

namespace QedFuse.Block;

/// <summary>
/// The host file under an image layer: positional I/O on one handle, durability, space
/// control and QEMU-compatible locks. Reads past the end of the file return zeros, as a
/// backing file smaller than its overlay must.
/// </summary>
internal sealed class HostFile : IDisposable
{
    private readonly SafeFileHandle _handle;

    private HostFile(string path, SafeFileHandle handle, bool writable)
    {
        Path = path;
        _handle = handle;
        Writable = writable;
    }

    public string Path { get; }

    public bool Writable { get; }

    public SafeFileHandle Handle => _handle;

    public long Length => RandomAccess.GetLength(_handle);

    /// <summary>Opens the file and takes QEMU's locks for <paramref name="role"/>.</summary>
    public static HostFile Open(string path, bool writable, ImageLock.Role role)
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

        return new HostFile(path, handle, writable);
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

    public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(_handle, data, offset);

    public void SetLength(long length) => RandomAccess.SetLength(_handle, length);

    /// <summary>
    /// Grows the file to at least <paramref name="length"/> bytes and never shrinks it, even
    /// while other threads extend it by writing past the end (ftruncate would cut their data off).
    /// </summary>
    public void EnsureLength(long length)
    {
        if (length <= 0 || Length >= length)
        {
            return;
        }

        // fallocate mode 0 on the last byte extends the size and leaves every existing byte alone.
        if (LibC.Fallocate(_handle, 0, length - 1, 1) == 0)
        {
            return;
        }

        // File systems without fallocate: a racing extension past 'length' is possible here,
        // but the check right before keeps the window small.
        if (Length < length)
        {
            SetLength(length);
        }
    }

    /// <summary>Data durable on return (fdatasync).</summary>
    public void Sync()
    {
        int errno = LibC.Fdatasync(_handle);
        if (errno != 0)
        {
            throw new IOException($"{Path}: fdatasync failed (errno {errno})", errno);
        }
    }

    /// <summary>Makes the host range read as zeros, releasing the space when it can; writes zeros where the file system cannot.</summary>
    public void ZeroRange(long offset, long length, bool release)
    {
        int mode = (release ? LibC.FallocPunchHole : LibC.FallocZeroRange) | LibC.FallocKeepSize;
        if (LibC.Fallocate(_handle, mode, offset, length) == 0)
        {
            return;
        }

        byte[] zeros = new byte[(int)Math.Min(length, 1 << 20)];
        for (long done = 0; done < length; done += zeros.Length)
        {
            Write(offset + done, zeros.AsSpan(0, (int)Math.Min(zeros.Length, length - done)));
        }
    }

    /// <summary>Reserves host space without changing what reads return; false where unsupported.</summary>
    public bool Preallocate(long offset, long length) => LibC.Fallocate(_handle, 0, offset, length) == 0;

    /// <summary>Next data at or after <paramref name="offset"/> (SEEK_DATA), or -errno (ENXIO past the last data).</summary>
    public long NextData(long offset) => LibC.Seek(_handle, offset, LibC.SeekData);

    /// <summary>Next hole at or after <paramref name="offset"/> (SEEK_HOLE), or -errno.</summary>
    public long NextHole(long offset) => LibC.Seek(_handle, offset, LibC.SeekHole);

    public long AllocatedBytes => Math.Max(0, LibC.AllocatedBytes(_handle));

    public void Dispose()
    {
        ImageLock.Release(_handle);
        _handle.Dispose();
    }
}
