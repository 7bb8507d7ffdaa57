namespace QedFuse.Fuse;

/// <summary>Which fields of a <see cref="FuseSetAttr"/> request are to be changed (FUSE_SET_ATTR_*).</summary>
[Flags]
public enum FuseSetAttrFields
{
    None = 0,
    Mode = 1 << 0,
    Uid = 1 << 1,
    Gid = 1 << 2,
    Size = 1 << 3,
    ATime = 1 << 4,
    MTime = 1 << 5,
    ATimeNow = 1 << 7,
    MTimeNow = 1 << 8,
    CTime = 1 << 10,
}

/// <summary>
/// A setattr request (chmod, chown, truncate, utimens). Only the members named in
/// <see cref="Fields"/> are meaningful. A file system may ignore time changes and
/// refuse the rest with -EPERM/-EINVAL.
/// </summary>
public readonly struct FuseSetAttr
{
    public FuseSetAttrFields Fields { get; init; }
    public uint Mode { get; init; }
    public uint Uid { get; init; }
    public uint Gid { get; init; }
    public long Size { get; init; }
    public FuseTimespec ATime { get; init; }
    public FuseTimespec MTime { get; init; }
    /// <summary>The file handle when the change comes through an open file (ftruncate), else null.</summary>
    public ulong? FileHandle { get; init; }

    public bool Has(FuseSetAttrFields field) => (Fields & field) != 0;
}
