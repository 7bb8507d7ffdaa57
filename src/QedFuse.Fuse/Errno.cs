namespace QedFuse.Fuse;

/// <summary>
/// Linux errno values used by file systems built on this binding, and the mapping from
/// exceptions to errno that every callback applies before replying.
/// </summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int ESPIPE = 29;
    public const int EROFS = 30;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;
    public const int ECONNABORTED = 103;

    /// <summary>Largest value the kernel accepts as an errno in a reply.</summary>
    public const int MaxErrno = 4095;

    /// <summary>
    /// Positive errno for an exception thrown by a file system: an
    /// <see cref="IOException"/> whose HResult is a plausible errno (1..4095) keeps it
    /// (so layers below can throw <c>new IOException(msg, Errno.ENOSPC)</c>),
    /// <see cref="ArgumentOutOfRangeException"/> is EINVAL, and anything else is EIO:
    /// a reader must never get success for a failed operation.
    /// </summary>
    public static int FromException(Exception exception) => exception switch
    {
        IOException io when io.HResult is > 0 and <= MaxErrno => io.HResult,
        ArgumentOutOfRangeException => EINVAL,
        OutOfMemoryException => ENOMEM,
        _ => EIO,
    };

    /// <summary>
    /// Positive errno for a negative result of a file-system method; results outside
    /// -1..-4095 are not errnos and become EIO.
    /// </summary>
    internal static int FromResult(long result) => result is < 0 and >= -MaxErrno ? (int)-result : EIO;
}
