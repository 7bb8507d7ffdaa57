using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>glibc x86_64 <c>struct statvfs</c> (112 bytes), for fuse_reply_statfs.</summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
internal struct StatVfs
{
    [FieldOffset(0)] public ulong BSize;
    [FieldOffset(8)] public ulong FrSize;
    [FieldOffset(16)] public ulong Blocks;
    [FieldOffset(24)] public ulong BFree;
    [FieldOffset(32)] public ulong BAvail;
    [FieldOffset(40)] public ulong Files;
    [FieldOffset(48)] public ulong FFree;
    [FieldOffset(56)] public ulong FAvail;
    [FieldOffset(64)] public ulong FsId;
    [FieldOffset(72)] public ulong Flag;
    [FieldOffset(80)] public ulong NameMax;
}
