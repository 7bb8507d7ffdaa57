namespace QedFuse.Fuse.Native;

/// <summary>Numeric constants from the libfuse and Linux headers that we depend on.</summary>
internal static class FuseConstants
{
    // fuse_common.h capability bits (fuse_conn_info.capable / want).
    public const uint CapAsyncRead = 1u << 0;
    public const uint CapSpliceRead = 1u << 9;
    public const uint CapAutoInvalData = 1u << 12;
    public const uint CapAsyncDio = 1u << 15;
    public const uint CapWritebackCache = 1u << 16;
    public const uint CapParallelDirops = 1u << 18;

    // fuse_lowlevel.h setattr to_set bits.
    public const int SetAttrMode = 1 << 0;
    public const int SetAttrUid = 1 << 1;
    public const int SetAttrGid = 1 << 2;
    public const int SetAttrSize = 1 << 3;
    public const int SetAttrATime = 1 << 4;
    public const int SetAttrMTime = 1 << 5;
    public const int SetAttrATimeNow = 1 << 7;
    public const int SetAttrMTimeNow = 1 << 8;
    public const int SetAttrCTime = 1 << 10;

    // Linux x86_64 (asm-generic) values.
    public const int ODirect = 0x4000;
    public const int MntDetach = 2;
}
