using QedFuse.Block.Native;
using Microsoft.Win32.SafeHandles;

namespace QedFuse.Block;

/// <summary>
/// QEMU's image locking protocol (block/file-posix.c), so that qedfuse and QEMU never both
/// write one image: OFD read locks on single bytes of the image file. Holding permission i
/// locks byte 100+i; refusing to share permission i locks byte 200+i. A conflict is found by
/// testing, before taking, the 200+i bytes of the permissions we want and the 100+i bytes of
/// those we refuse to share.
/// </summary>
internal static class ImageLock
{
    private const long PermBase = 100;
    private const long SharedBase = 200;

    // Permission bits: 0 consistent read, 1 write, 2 write-unchanged, 3 resize.
    private const int ConsistentRead = 0;
    private const int WritePerm = 1;
    private const int Resize = 3;

    private static readonly string[] PermNames = ["consistent read", "write", "write unchanged", "resize"];

    /// <summary>The roles an open plays, each with QEMU's held and unshared permissions.</summary>
    public enum Role
    {
        /// <summary>Read-write top image: holds read, write, resize; shares neither write nor resize.</summary>
        Writer,

        /// <summary>Read-only top image: holds read; refuses to share write and resize.</summary>
        Reader,

        /// <summary>Backing file, or a forced-share read-only open: holds read, refuses nothing.</summary>
        SharedReader,
    }

    /// <summary>Takes the locks for <paramref name="role"/>, or throws naming the conflict.</summary>
    public static void Acquire(SafeFileHandle fd, string path, Role role)
    {
        int[] held = role == Role.Writer ? [ConsistentRead, WritePerm, Resize] : [ConsistentRead];
        int[] unshared = role == Role.SharedReader ? [] : [WritePerm, Resize];

        foreach (int p in held)
        {
            Test(fd, path, SharedBase + p, $"which does not share {PermNames[p]} access");
        }

        foreach (int p in unshared)
        {
            Test(fd, path, PermBase + p, $"which has it open with {PermNames[p]} access");
        }

        foreach (long b in held.Select(p => PermBase + p).Concat(unshared.Select(p => SharedBase + p)))
        {
            int errno = LibC.SetOfdLock(fd, b, LibC.LockRead);
            if (errno != 0)
            {
                throw errno is LibC.EAGAIN
                    ? new ImageInUseException(path, "which locked it while we were opening it", LockHolder.Find(path, b))
                    : new BadImageException(path, $"cannot take image lock (errno {errno})");
            }
        }
    }

    /// <summary>
    /// Drops every lock byte this open file description holds. Closing the descriptor is not
    /// enough: a child forked by another thread (Process.Start) shares the description until it
    /// execs, and the locks live as long as the description does.
    /// </summary>
    public static void Release(SafeFileHandle fd)
    {
        if (fd.IsClosed || fd.IsInvalid)
        {
            return;
        }

        for (int p = ConsistentRead; p <= Resize; p++)
        {
            LibC.SetOfdLock(fd, PermBase + p, LibC.LockNone);
            LibC.SetOfdLock(fd, SharedBase + p, LibC.LockNone);
        }
    }

    private static void Test(SafeFileHandle fd, string path, long offset, string why)
    {
        if (LibC.OfdLockConflicts(fd, offset, LibC.LockWrite, out int errno))
        {
            throw new ImageInUseException(path, why, LockHolder.Find(path, offset));
        }

        if (errno != 0 && errno != LibC.EINVAL)
        {
            throw new BadImageException(path, $"cannot test image lock (errno {errno})");
        }
    }
}
