using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>
/// Mirror of <c>struct fuse_buf</c> (40 bytes). Each worker thread owns one; libfuse
/// mallocs <see cref="Mem"/> on the first receive and reuses it afterwards, so the
/// worker frees it (with libc free) when it exits.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
internal unsafe struct FuseBuf
{
    [FieldOffset(0)] public nuint Size;
    [FieldOffset(8)] public int Flags;
    [FieldOffset(16)] public void* Mem;
    [FieldOffset(24)] public int Fd;
    [FieldOffset(32)] public long Pos;
}
