using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>
/// glibc x86_64 <c>struct stat</c> (144 bytes). Note st_nlink (8 bytes) comes before
/// st_mode on x86_64, unlike the generic layout.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
internal struct Stat
{
    [FieldOffset(0)] public ulong Dev;
    [FieldOffset(8)] public ulong Ino;
    [FieldOffset(16)] public ulong NLink;
    [FieldOffset(24)] public uint Mode;
    [FieldOffset(28)] public uint Uid;
    [FieldOffset(32)] public uint Gid;
    [FieldOffset(40)] public ulong RDev;
    [FieldOffset(48)] public long Size;
    [FieldOffset(56)] public long BlkSize;
    [FieldOffset(64)] public long Blocks;
    [FieldOffset(72)] public Timespec ATime;
    [FieldOffset(88)] public Timespec MTime;
    [FieldOffset(104)] public Timespec CTime;
}

/// <summary><c>struct timespec</c> on x86_64: two 8-byte fields.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timespec
{
    public long Sec;
    public long NSec;
}
