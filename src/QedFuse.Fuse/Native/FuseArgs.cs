using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>Mirror of <c>struct fuse_args</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
internal unsafe struct FuseArgs
{
    [FieldOffset(0)] public int Argc;
    [FieldOffset(8)] public byte** Argv;
    [FieldOffset(16)] public int Allocated;
}
