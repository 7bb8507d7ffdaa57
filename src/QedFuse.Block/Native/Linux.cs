namespace QedFuse.Block.Native;

/// <summary>
/// Linux's values for fallocate(2) modes and lseek(2) whences: the host calls here use them,
/// and the mount's fallocate and lseek handlers receive the same values from the kernel.
/// Pinned against the glibc headers by <see cref="LibC.LayoutFacts"/>.
/// </summary>
public static class Linux
{
    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;
    public const int FallocZeroRange = 0x10;

    public const int SeekData = 3;
    public const int SeekHole = 4;
}
