namespace QedFuse.Block;

/// <summary>
/// What an I/O on an image file is for, named as QEMU's blkdebug events are, so that fault
/// injection can target "the write of a new L2 table" rather than "the 7th write".
/// </summary>
internal enum IoEvent
{
    HeaderUpdate,
    L1Update,
    L2Alloc,
    L2Update,
    CowRead,
    DataWrite,
    Flush,
    Grow,
    RefblockAlloc,
    RefblockUpdate,
    ReftableUpdate,
    ReftableGrow,
}

/// <summary>
/// Sees every I/O on a <see cref="HostFile"/> before and after it happens, and may fail it by
/// throwing. Only tests install one (fault injection, power-loss simulation).
/// </summary>
internal interface IHostFileHook
{
    void Before(HostFile file, IoEvent e, long offset, long length);

    void After(HostFile file, IoEvent e, long offset, long length);
}
