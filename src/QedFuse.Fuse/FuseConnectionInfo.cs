namespace QedFuse.Fuse;

/// <summary>What the kernel and this binding agreed on at FUSE_INIT (read-only snapshot).</summary>
public readonly record struct FuseConnectionInfo(
    uint ProtocolMajor,
    uint ProtocolMinor,
    uint Capable,
    uint Want,
    uint MaxWrite,
    uint MaxRead,
    uint MaxReadahead,
    uint MaxBackground);
