using System.Buffers;
using QedFuse.Fuse.Native;

namespace QedFuse.Fuse;

/// <summary>
/// A read or write taken off the worker thread that received it (see
/// <see cref="IFuseFileSystem.Admit"/>): the worker goes back to serving other requests, and
/// whoever holds this object later calls <see cref="Run"/> (serve it through the file system's
/// Read/Write and reply) or <see cref="Fail"/>, exactly once, from any thread. A write's data is
/// copied out of libfuse's receive buffer (pooled), since the worker reuses that buffer.
/// </summary>
public sealed unsafe class FuseDeferredRequest
{
    private readonly FuseSession _session;
    private readonly nint _req;
    private readonly ulong _fh;
    private byte[]? _data;
    private int _done;

    internal FuseDeferredRequest(FuseSession session, nint req, ulong ino, ulong fh, long offset, int size, byte* writeData)
    {
        _session = session;
        _req = req;
        _fh = fh;
        Ino = ino;
        Offset = offset;
        Size = size;
        IsWrite = writeData != null;
        if (IsWrite)
        {
            _data = ArrayPool<byte>.Shared.Rent(size);
            new ReadOnlySpan<byte>(writeData, size).CopyTo(_data);
        }

        session.DeferredTaken();
    }

    public ulong Ino { get; }

    public long Offset { get; }

    public int Size { get; }

    public bool IsWrite { get; }

    /// <summary>Serves the request on the calling thread and replies.</summary>
    public void Run()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0)
        {
            return;
        }

        int err;
        byte[]? buffer = null;
        try
        {
            IFuseFileSystem fs = _session.FileSystem;
            if (IsWrite)
            {
                int result = fs.Write(Ino, _fh, Offset, _data.AsSpan(0, Size));
                if (result >= 0 && result <= Size)
                {
                    LibFuse.fuse_reply_write(_req, (nuint)result);
                    return;
                }

                err = Errno.FromResult(result < 0 ? result : -Errno.EIO);
            }
            else
            {
                buffer = ArrayPool<byte>.Shared.Rent(Size);
                int result = fs.Read(Ino, _fh, Offset, buffer.AsSpan(0, Size));
                if (result >= 0 && result <= Size)
                {
                    fixed (byte* p = buffer)
                    {
                        LibFuse.fuse_reply_buf(_req, p, (nuint)result);
                    }

                    return;
                }

                err = Errno.FromResult(result < 0 ? result : -Errno.EIO);
            }
        }
        catch (Exception e)
        {
            err = Errno.FromException(e);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            Finish();
        }

        LibFuse.fuse_reply_err(_req, err);
    }

    /// <summary>Answers the request with <paramref name="errno"/> without serving it.</summary>
    public void Fail(int errno)
    {
        if (Interlocked.Exchange(ref _done, 1) != 0)
        {
            return;
        }

        LibFuse.fuse_reply_err(_req, errno);
        Finish();
    }

    private void Finish()
    {
        if (_data is not null)
        {
            ArrayPool<byte>.Shared.Return(_data);
            _data = null;
        }

        _session.DeferredDone();
    }
}

/// <summary>
/// The request being admitted, as <see cref="IFuseFileSystem.Admit"/> sees it: only valid during
/// that call. <see cref="Defer"/> takes it over.
/// </summary>
public readonly unsafe ref struct FuseRequestHandoff
{
    private readonly FuseSession _session;
    private readonly nint _req;
    private readonly ulong _ino;
    private readonly ulong _fh;
    private readonly long _offset;
    private readonly int _size;
    private readonly byte* _writeData;

    internal FuseRequestHandoff(FuseSession session, nint req, ulong ino, ulong fh, long offset, int size, byte* writeData)
    {
        _session = session;
        _req = req;
        _ino = ino;
        _fh = fh;
        _offset = offset;
        _size = size;
        _writeData = writeData;
    }

    /// <summary>Takes the request off the worker; the caller must then return false from Admit.</summary>
    public FuseDeferredRequest Defer() => new(_session, _req, _ino, _fh, _offset, _size, _writeData);
}
