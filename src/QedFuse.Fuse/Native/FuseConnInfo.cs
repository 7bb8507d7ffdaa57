using System.Runtime.InteropServices;

namespace QedFuse.Fuse.Native;

/// <summary>
/// Mirror of <c>struct fuse_conn_info</c> (128 bytes). Only the fields we read or write
/// are named; the rest is reserved space. There is no max_pages field in 3.14:
/// libfuse derives it from max_write. Never change max_read here (EPROTO unless it
/// matches <c>-o max_read=</c>).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct FuseConnInfo
{
    [FieldOffset(0)] public uint ProtoMajor;
    [FieldOffset(4)] public uint ProtoMinor;
    [FieldOffset(8)] public uint MaxWrite;
    [FieldOffset(12)] public uint MaxRead;
    [FieldOffset(16)] public uint MaxReadahead;
    [FieldOffset(20)] public uint Capable;
    [FieldOffset(24)] public uint Want;
    [FieldOffset(28)] public uint MaxBackground;
    [FieldOffset(32)] public uint CongestionThreshold;
    [FieldOffset(36)] public uint TimeGran;
}
