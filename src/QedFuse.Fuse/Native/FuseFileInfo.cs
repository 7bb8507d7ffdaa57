using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>
/// Mirror of <c>struct fuse_file_info</c> (x86_64, libfuse 3.14: 40 bytes). The C
/// bitfields (writepage, direct_io, keep_cache, ...) share the 32-bit word at offset 4;
/// the masks below are pinned by the layout test against gcc.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
internal struct FuseFileInfo
{
    [FieldOffset(0)] public int Flags;
    [FieldOffset(4)] public uint BitFields;
    [FieldOffset(16)] public ulong Fh;
    [FieldOffset(24)] public ulong LockOwner;
    [FieldOffset(32)] public uint PollEvents;

    public const uint WritePageBit = 1u << 0;
    public const uint DirectIoBit = 1u << 1;
    public const uint KeepCacheBit = 1u << 2;
    public const uint FlushBit = 1u << 3;
    public const uint NonSeekableBit = 1u << 4;
}
