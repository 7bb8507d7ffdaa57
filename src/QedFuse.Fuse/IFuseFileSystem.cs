namespace QedFuse.Fuse;

/// <summary>
/// A small inode-based file system served through the FUSE low-level API.
/// Inode 1 is the root directory. Methods return 0 (or a byte count / offset where
/// stated) on success and a negative errno on failure (e.g. <c>-Errno.ENOENT</c>).
/// Exceptions are also fine: they become -errno through <see cref="Errno.FromException"/>.
/// Methods are called concurrently from several worker threads.
///
/// Operations without a method here (mknod, create, unlink, rename, xattrs, ...) are not
/// implemented and fail with ENOSYS/EPERM. Permission checks are done by the kernel when
/// the mount uses <c>default_permissions</c> (the default of <see cref="FuseMountOptions"/>);
/// there is no access() method.
///
/// Optional methods have default bodies. Beware of the kernel's ENOSYS memory: when
/// fsync, flush, fallocate or lseek answer -ENOSYS once, the kernel stops sending that
/// operation for the whole mount (fsync and flush then succeed without asking!).
/// </summary>
public interface IFuseFileSystem
{
    /// <summary>Called once the connection is negotiated, before any other request.</summary>
    void Init(FuseConnectionInfo connection) { }

    /// <summary>Called from <see cref="FuseSession.Dispose"/> after the loop has ended, if Init ran.</summary>
    void Destroy() { }

    /// <summary>Finds <paramref name="name"/> (UTF-8, no NUL) in directory <paramref name="parent"/>.</summary>
    int Lookup(ulong parent, ReadOnlySpan<byte> name, out FuseAttr attr);

    /// <summary>Attributes of <paramref name="ino"/>.</summary>
    int GetAttr(ulong ino, out FuseAttr attr);

    /// <summary>
    /// Changes attributes (truncate, chmod, utimens, ...) and returns the resulting
    /// attributes. File systems may ignore time changes and refuse others.
    /// </summary>
    int SetAttr(ulong ino, in FuseSetAttr request, out FuseAttr attr)
    {
        attr = default;
        return -Errno.ENOSYS;
    }

    /// <summary>
    /// Lists directory <paramref name="ino"/> starting at <paramref name="offset"/> (0 =
    /// the beginning, otherwise a nextOffset given earlier) into <paramref name="entries"/>
    /// until it is full. Include "." and "..". Returns 0 or -errno.
    /// </summary>
    int ReadDir(ulong ino, ulong fh, long offset, ref FuseDirectoryBuffer entries);

    /// <summary>
    /// Opens <paramref name="ino"/> with open(2) <paramref name="flags"/>; set file handle,
    /// DirectIo and KeepCache in <paramref name="options"/>.
    /// </summary>
    int Open(ulong ino, int flags, ref FuseOpenOptions options) => 0;

    /// <summary>
    /// Reads into <paramref name="buffer"/> (a reusable per-thread buffer whose length is
    /// the requested size) from <paramref name="offset"/>. Returns the byte count (less
    /// than requested only at end of file) or -errno.
    /// </summary>
    int Read(ulong ino, ulong fh, long offset, Span<byte> buffer);

    /// <summary>
    /// Writes <paramref name="data"/>, which points straight into libfuse's receive buffer
    /// (valid only during the call). Returns the byte count written or -errno.
    /// </summary>
    int Write(ulong ino, ulong fh, long offset, ReadOnlySpan<byte> data) => -Errno.EROFS;

    /// <summary>
    /// Asked before every read and write, on the worker thread that received it. True serves it
    /// there at once (the default). To make it wait without holding the worker hostage (an I/O
    /// limit, say), take it over with <see cref="FuseRequestHandoff.Defer"/> and return false:
    /// the worker moves on, and the file system later runs or fails the
    /// <see cref="FuseDeferredRequest"/> from any thread. Must be cheap: it is on every request.
    /// </summary>
    bool Admit(ulong ino, bool write, int bytes, in FuseRequestHandoff request) => true;

    /// <summary>close(2) of one file descriptor of an open (may come several times per open).</summary>
    int Flush(ulong ino, ulong fh) => 0;

    /// <summary>Makes written data durable; <paramref name="dataOnly"/> is fdatasync.</summary>
    int Fsync(ulong ino, ulong fh, bool dataOnly) => 0;

    /// <summary>Last close of an open. The result is not delivered to anyone.</summary>
    int Release(ulong ino, ulong fh) => 0;

    /// <summary>fallocate(2); <paramref name="mode"/> has FALLOC_FL_* bits (KEEP_SIZE 1, PUNCH_HOLE 2, ZERO_RANGE 0x10).</summary>
    int Fallocate(ulong ino, ulong fh, int mode, long offset, long length) => -Errno.EOPNOTSUPP;

    /// <summary>
    /// lseek(2) with SEEK_DATA (3) or SEEK_HOLE (4): the kernel handles the other
    /// whence values itself. Returns the resulting offset or -errno (-ENXIO at/after EOF).
    /// The default -ENOSYS makes the kernel treat the whole file as data from then on.
    /// </summary>
    long Lseek(ulong ino, ulong fh, long offset, int whence) => -Errno.ENOSYS;

    /// <summary>statfs(2); the default reports an empty file system with 4 KiB blocks.</summary>
    int StatFs(ulong ino, out FuseStatFs stat)
    {
        stat = new FuseStatFs { BlockSize = 4096, FragmentSize = 4096, NameMax = 255 };
        return 0;
    }
}
